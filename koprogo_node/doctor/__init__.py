"""Health checks for `koprogo-node doctor`: each says OK, WARN or FAIL and a fix."""
