"""Tests for ModelRunner: integrity checks, signatures and threading."""

import os
import shutil
import threading
from pathlib import Path

import nacl.signing
import numpy as np
import pytest

from koprogo_node.detect.models import file_sha256, model_entry, models_dir
from koprogo_node.detect.onnx_runner import ModelIntegrityError, ModelRunner
from koprogo_node.errors import ConfigError

NAME = "water_leak"


@pytest.fixture
def model_copy(tmp_path: Path) -> Path:
    """A private copy of a shipped model."""
    source = models_dir() / model_entry(NAME)["file"]
    return Path(shutil.copy(source, tmp_path / source.name))


def flip_byte(path: Path, offset: int = 100) -> None:
    """Invert one byte of a file in place."""
    data = bytearray(path.read_bytes())
    data[offset] ^= 0xFF
    path.write_bytes(bytes(data))


def test_refuses_tampered_file_naming_both_digests(model_copy):
    """One flipped byte is refused with the file, expected and actual digest."""
    expected = model_entry(NAME)["sha256"]
    flip_byte(model_copy)
    actual = file_sha256(model_copy)

    with pytest.raises(ModelIntegrityError) as caught:
        ModelRunner(model_copy, sha256=expected)

    message = str(caught.value)
    assert str(model_copy) in message
    assert f"expected {expected}" in message
    assert f"actual {actual}" in message


def test_integrity_error_is_a_config_error():
    """Callers catching ConfigError also catch integrity failures."""
    assert issubclass(ModelIntegrityError, ConfigError)


def test_accepts_good_signature(model_copy):
    """A signature by the given release key is accepted."""
    key = nacl.signing.SigningKey.generate()
    sig = key.sign(model_copy.read_bytes()).signature
    model_copy.with_name(model_copy.name + ".sig").write_bytes(sig)

    runner = ModelRunner(
        model_copy,
        sha256=file_sha256(model_copy),
        release_public_key=bytes(key.verify_key),
    )

    assert runner.score(np.zeros((2, 48), dtype=np.float32)).shape == (2,)


def test_accepts_hex_signature_and_hex_key(model_copy):
    """Signature and key may be given as hex text."""
    key = nacl.signing.SigningKey.generate()
    sig = key.sign(model_copy.read_bytes()).signature
    model_copy.with_name(model_copy.name + ".sig").write_text(sig.hex() + "\n")

    ModelRunner(
        model_copy,
        sha256=file_sha256(model_copy),
        release_public_key=bytes(key.verify_key).hex(),
    )


def test_refuses_signature_by_another_key(model_copy):
    """A signature from a different key is refused."""
    signer, release = (
        nacl.signing.SigningKey.generate(),
        nacl.signing.SigningKey.generate(),
    )
    sig = signer.sign(model_copy.read_bytes()).signature
    model_copy.with_name(model_copy.name + ".sig").write_bytes(sig)

    with pytest.raises(ModelIntegrityError, match="does not match its signature"):
        ModelRunner(
            model_copy,
            sha256=file_sha256(model_copy),
            release_public_key=bytes(release.verify_key),
        )


def test_refuses_signed_file_without_key(model_copy):
    """A .sig with no release key configured is refused, not ignored."""
    model_copy.with_name(model_copy.name + ".sig").write_bytes(bytes(64))

    with pytest.raises(ModelIntegrityError, match="no release public key"):
        ModelRunner(model_copy, sha256=file_sha256(model_copy))


def test_require_signature_refuses_unsigned(model_copy):
    """With require_signature a missing .sig is refused."""
    with pytest.raises(ModelIntegrityError, match="has no signature"):
        ModelRunner(model_copy, sha256=file_sha256(model_copy), require_signature=True)


def test_runs_with_one_intra_and_one_inter_op_thread():
    """The session is configured for one thread each way."""
    runner = ModelRunner.from_manifest(NAME)

    assert runner.threads == (1, 1)


@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="needs Linux /proc")
def test_scoring_starts_no_native_threads():
    """Loading and scoring adds no OS thread to the process."""
    before = len(os.listdir("/proc/self/task"))

    runner = ModelRunner.from_manifest(NAME)
    runner.score(np.zeros((500, 48), dtype=np.float32))

    assert len(os.listdir("/proc/self/task")) == before


def test_score_rejects_wrong_width():
    """Windows of the wrong width give a clear ValueError."""
    runner = ModelRunner.from_manifest(NAME)

    with pytest.raises(ValueError, match="expects rows of 48"):
        runner.score(np.zeros((3, 10)))


async def test_score_async_runs_off_the_loop_thread():
    """score_async returns the same values, using one named worker thread."""
    runner = ModelRunner.from_manifest(NAME)
    windows = np.random.default_rng(5).random((10, 48)).astype(np.float32)

    result = await runner.score_async(windows)
    workers = [t.name for t in threading.enumerate() if t.name.startswith("onnx")]
    runner.close()

    np.testing.assert_array_equal(result, runner.score(windows))
    assert len(workers) == 1
