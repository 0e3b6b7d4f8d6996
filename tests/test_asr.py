"""Speech model resolution: bundled models are assembled and verified, folders are checked."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from callscope.speech import asr
from callscope.store import sha256_of

pytestmark = pytest.mark.model


def test_bundled_model_is_assembled_with_its_pinned_digest(model_dir: Path):
    path = asr.resolve_model("base", model_dir)
    assert path == model_dir / "base"
    assert sha256_of(path / "model.bin") == asr.BUNDLED["base"].sha256
    assert (path / "config.json").is_file() and (path / "tokenizer.json").is_file()


def test_tampered_model_is_refused(model_dir: Path, tmp_path: Path):
    cache = tmp_path / "cache"
    shutil.copytree(asr.resolve_model("base", model_dir), cache / "base")
    with open(cache / "base" / "model.bin", "r+b") as f:
        f.seek(1000)
        f.write(b"\x00\x01\x02")
    with pytest.raises(asr.ModelError, match="not the pinned .* refusing to load it"):
        asr.resolve_model("base", cache)


def test_model_folder_is_used_as_given(model_dir: Path):
    folder = asr.resolve_model("base", model_dir)
    assert asr.resolve_model(str(folder), model_dir / "unused") == folder


def test_unknown_model_name_or_incomplete_folder_is_refused(tmp_path: Path):
    with pytest.raises(asr.ModelError, match="neither a bundled model"):
        asr.resolve_model("large-v9", tmp_path)
    (tmp_path / "half").mkdir()
    (tmp_path / "half" / "config.json").write_text("{}")
    with pytest.raises(asr.ModelError, match="model.bin and config.json"):
        asr.resolve_model(str(tmp_path / "half"), tmp_path)


def test_bundled_model_whose_package_is_missing_says_so(tmp_path: Path, monkeypatch):
    missing = asr.BundledModel(
        parts=(("no_such_model_package", "model.bin"),),
        files=("no_such_model_package", "."),
        sha256="0" * 64,
        multilingual=False,
    )
    monkeypatch.setitem(asr.BUNDLED, "ghost", missing)
    with pytest.raises(asr.ModelError, match="'no_such_model_package' .* is not installed"):
        asr.resolve_model("ghost", tmp_path)
    assert not (tmp_path / "ghost").exists()


@pytest.mark.parametrize("call", ["auto0_mono_u8.wav", "katiesteve_mono.wav"])
def test_speech_is_split_at_pauses_into_parts_of_equal_speech(call, tmp_path):
    """With the default settings, even a 19-second call is cut in two (both cores work)."""
    from callscope.config import Settings
    from callscope.speech import media
    from tests.support import CALLS

    finder = asr.pause_finder(Settings(data_dir=tmp_path))
    audio, _ = media.decode(CALLS / call, sample_rate=media.SAMPLE_RATE)
    parts = asr.split_at_pauses(asr.normalised(audio[0]), 2, finder)
    assert len(parts) == 2
    assert parts[0][0] == 0 and parts[0][1] == parts[1][0] and parts[1][1] == audio.shape[1]
    assert 0.3 < parts[0][1] / audio.shape[1] < 0.7
    assert asr.split_at_pauses(audio[0], 1, finder) == [(0, audio.shape[1])]


def test_a_quiet_channel_is_brought_to_the_common_speech_level():
    rng = np.random.default_rng(0)
    speech = 0.1 * rng.standard_normal(16000).astype(np.float32)
    quiet = speech * 10 ** (-30 / 20)  # a caller 30 dB below
    assert np.allclose(asr.normalised(quiet), asr.normalised(speech), atol=1e-4)
    hiss = 1e-6 * rng.standard_normal(16000).astype(np.float32)
    assert np.abs(asr.normalised(hiss)).max() < 1e-3  # at most +40 dB: hiss stays hiss
    assert not asr.normalised(np.zeros(16000, dtype=np.float32)).any()
    assert len(asr.normalised(np.zeros(10, dtype=np.float32))) == 10
