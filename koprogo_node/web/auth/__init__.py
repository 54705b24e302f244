"""Dashboard authentication: accounts, sessions, CSRF, API tokens, roles."""

from .middleware import (
    ANONYMOUS,
    AUTH,
    PUBLIC,
    ROUTE_ROLES,
    SESSION,
    USER,
    AuthSettings,
    AuthState,
    Caller,
    auth_middleware,
    required_role,
)
from .passwords import PasswordHasher
from .routes import add_routes, record_admin_action
from .setup_code import ensure_setup_code, show_on_console
from .users import Role

__all__ = [
    "ANONYMOUS",
    "AUTH",
    "PUBLIC",
    "ROUTE_ROLES",
    "SESSION",
    "USER",
    "AuthSettings",
    "AuthState",
    "Caller",
    "record_admin_action",
    "PasswordHasher",
    "Role",
    "add_routes",
    "auth_middleware",
    "ensure_setup_code",
    "show_on_console",
    "required_role",
]
