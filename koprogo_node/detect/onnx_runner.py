"""Run a shipped ONNX model on one thread, after checking its digest and signature.

The file is read once; the digest and optional Ed25519 signature are checked
on those bytes and the session is built from the same bytes, so a file swapped
between check and load is never run.
"""

import asyncio
import binascii
import hashlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import nacl.exceptions
import nacl.signing
import numpy as np
import onnxruntime as ort

from koprogo_node.detect.models import load_manifest, model_entry, models_dir
from koprogo_node.errors import ConfigError

SIGNATURE_SUFFIX = ".sig"


class ModelIntegrityError(ConfigError):
    """Raised when a model file's digest or release signature does not match."""


class ModelRunner:
    """One verified ONNX model with a single-thread session and executor."""

    def __init__(
        self,
        path: Path,
        *,
        sha256: str,
        release_public_key: bytes | str | None = None,
        require_signature: bool = False,
    ) -> None:
        self.path = Path(path)
        data = _read_model(self.path)
        _check_digest(self.path, data, sha256)
        _check_signature(self.path, data, release_public_key, require_signature)
        self._session = _open_session(self.path, data)
        self.input_name = self._session.get_inputs()[0].name
        self.output_name = self._session.get_outputs()[0].name
        self.input_width = self._session.get_inputs()[0].shape[1]
        self._executor: ThreadPoolExecutor | None = None

    @classmethod
    def from_manifest(
        cls,
        name: str,
        *,
        directory: Path | None = None,
        release_public_key: bytes | str | None = None,
        require_signature: bool = False,
    ) -> "ModelRunner":
        """Open a model listed in the manifest; a key argument beats the manifest's."""
        directory = directory or models_dir()
        entry = model_entry(name, directory)
        key = release_public_key or load_manifest(directory).get("release_public_key")
        return cls(
            directory / entry["file"],
            sha256=entry["sha256"],
            release_public_key=key,
            require_signature=require_signature,
        )

    @property
    def threads(self) -> tuple[int, int]:
        """Return the session's (intra-op, inter-op) thread counts."""
        options = self._session.get_session_options()
        return options.intra_op_num_threads, options.inter_op_num_threads

    def score(self, windows: np.ndarray) -> np.ndarray:
        """Score rows of feature windows synchronously; one value per row."""
        batch = np.ascontiguousarray(windows, dtype=np.float32)
        if batch.ndim != 2 or batch.shape[1] != self.input_width:
            raise ValueError(
                f"{self.path.name} expects rows of {self.input_width} values, "
                f"got shape {batch.shape}"
            )
        if batch.shape[0] == 0:
            return np.empty(0, dtype=np.float32)
        (result,) = self._session.run([self.output_name], {self.input_name: batch})
        return result

    async def score_async(self, windows: np.ndarray) -> np.ndarray:
        """Score off the event loop, on this runner's single worker thread."""
        if self._executor is None:
            self._executor = ThreadPoolExecutor(1, thread_name_prefix="onnx")
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, self.score, windows)

    def close(self) -> None:
        """Stop the worker thread; the session is freed with the runner."""
        if self._executor is not None:
            self._executor.shutdown(wait=True)
            self._executor = None


def _read_model(path: Path) -> bytes:
    """Read the model file, turning I/O errors into ConfigError."""
    try:
        return path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read model file {path}: {exc}") from exc


def _check_digest(path: Path, data: bytes, expected: str) -> None:
    """Refuse bytes whose SHA-256 differs from the manifest's."""
    actual = hashlib.sha256(data).hexdigest()
    if actual != expected.lower():
        raise ModelIntegrityError(
            f"model file {path} failed its sha256 check: "
            f"expected {expected}, actual {actual}"
        )


def _check_signature(
    path: Path, data: bytes, key: bytes | str | None, required: bool
) -> None:
    """Verify <file>.sig with the release key when the signature exists."""
    sig_path = path.with_name(path.name + SIGNATURE_SUFFIX)
    if not sig_path.exists():
        if required:
            raise ModelIntegrityError(f"model file {path} has no signature {sig_path}")
        return
    if key is None:
        raise ModelIntegrityError(
            f"model file {path} is signed but no release public key is configured"
        )
    try:
        _verify_key(key).verify(data, _read_signature(sig_path))
    except nacl.exceptions.BadSignatureError as exc:
        raise ModelIntegrityError(
            f"model file {path} does not match its signature {sig_path}"
        ) from exc


def _verify_key(key: bytes | str) -> nacl.signing.VerifyKey:
    """Build a VerifyKey from 32 raw bytes or 64 hex characters."""
    try:
        raw = bytes.fromhex(key) if isinstance(key, str) else bytes(key)
        return nacl.signing.VerifyKey(raw)
    except (ValueError, TypeError, nacl.exceptions.CryptoError) as exc:
        raise ConfigError(
            f"release public key is not a 32-byte Ed25519 key: {exc}"
        ) from exc


def _read_signature(sig_path: Path) -> bytes:
    """Return the 64-byte signature stored raw or as hex text."""
    blob = sig_path.read_bytes()
    if len(blob) == 64:
        return blob
    try:
        signature = binascii.unhexlify(blob.strip())
    except (binascii.Error, ValueError):
        signature = b""
    if len(signature) != 64:
        raise ModelIntegrityError(
            f"signature file {sig_path} is not 64 raw bytes or 128 hex characters"
        )
    return signature


def _open_session(path: Path, data: bytes) -> ort.InferenceSession:
    """Build a CPU session limited to one intra-op and one inter-op thread."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    # Spinning threads would burn a core of the Pi between calls.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    try:
        return ort.InferenceSession(
            data, sess_options=options, providers=["CPUExecutionProvider"]
        )
    except Exception as exc:  # onnxruntime raises its own untyped errors
        raise ConfigError(f"onnxruntime cannot load model {path}: {exc}") from exc
