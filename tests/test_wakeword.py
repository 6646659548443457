"""openWakeWord as a streaming program: front end + speech embedding + a dnn and an rnn head
(fx2mlx.twins.openwakeword), compiled as an fx2mlx.Stream, fed a 10 s clip in 80 ms chunks; the scores
equal the whole-clip PyTorch run with the same framing. The heads are checked against the classes in
openwakeword's own train.py (read from the installed package; importing it needs torchaudio etc.)."""
import ast
import importlib.util
import re
import wave
from pathlib import Path

import numpy as np
import pytest
import torch

from fx2mlx.cli import main
from fx2mlx.twins.openwakeword import CHUNK, RATE, DnnHead, Detector, RnnHead


@pytest.fixture(scope="module")
def detector():
    torch.manual_seed(0)
    d = Detector().eval()
    with torch.no_grad():  # random heads sit near 0.5 everywhere: widen them so the scores move
        d.dnn.last_layer.weight.mul_(8.0)
        d.rnn.layer2.weight.mul_(60.0)
    return d


@pytest.fixture(scope="module")
def compiled(detector, tmp_path_factory):
    import fx2mlx

    out = tmp_path_factory.mktemp("ww") / "out"
    fx2mlx.convert(detector.stream(), out_dir=out)
    return out


def clip_10s():
    g = torch.Generator().manual_seed(1)
    t = torch.arange(125 * CHUNK) / RATE
    tone = torch.sin(2 * torch.pi * 440 * t) * (t > 4) * (t < 6)  # 2 s of tone inside noise
    return ((torch.randn(t.shape, generator=g) * 0.1 + tone) * 8000)[None]


@pytest.mark.slow
def test_wakeword_streams_10s_in_80ms_chunks_like_the_whole_clip(detector, compiled):
    import fx2mlx

    clip = clip_10s()
    dnn, rnn = (o.numpy()[:, 0] for o in detector.whole_clip(clip))
    s = fx2mlx.load(compiled)
    outs = [s.feed(clip[:, k:k + CHUNK].numpy()) for k in range(0, clip.shape[1], CHUNK)]
    got_dnn = np.array([float(np.asarray(o[0])[0, 0]) for o in outs])
    got_rnn = np.array([float(np.asarray(o[1])[0, 0]) for o in outs])
    assert len(got_dnn) == len(dnn) == 125
    assert dnn.std() > 0.01 and rnn.std() > 0.01  # the scores move over the clip
    # float32 end to end (log-mel of int16-scale audio, CNN, BiLSTM): MLX vs torch kernels, seen ~2e-7
    assert np.abs(got_dnn - dnn).max() <= 1e-4 and np.abs(got_rnn - rnn).max() <= 1e-4
    s.reset()
    first = s.feed(clip[:, :CHUNK].numpy())
    assert abs(float(np.asarray(first[0])[0, 0]) - dnn[0]) <= 1e-4


@pytest.mark.slow
def test_fx2mlx_stream_prints_scores_and_detections(compiled, tmp_path, capfd):
    wav = tmp_path / "clip.wav"
    with wave.open(str(wav), "wb") as w:
        w.setnchannels(1), w.setsampwidth(2), w.setframerate(RATE)
        w.writeframes(clip_10s()[0].clamp(-32768, 32767).to(torch.int16).numpy().astype("<i2").tobytes())
    assert main(["stream", str(compiled), str(wav), "--threshold", "0.0"]) == 0
    out = capfd.readouterr().out
    rows = [ln for ln in out.splitlines() if re.fullmatch(r"\s*\d+\.\d{3}s  \d\.\d{4}  \d\.\d{4}", ln)]
    assert len(rows) == 125 and rows[1].split()[0] == "0.080s"  # one line per 80 ms chunk, both heads
    assert "detections (score >= 0): 250" in out  # 125 chunks x 2 heads, all >= 0
    bad = tmp_path / "stereo.wav"
    with wave.open(str(bad), "wb") as w:
        w.setnchannels(2), w.setsampwidth(2), w.setframerate(RATE)
        w.writeframes(b"\0" * 400)
    assert main(["stream", str(compiled), str(bad)]) != 0
    assert "mono" in capfd.readouterr().err


def _package_heads():
    """The dnn and rnn `Net` classes defined inside openwakeword.train.Model.__init__, built from the
    installed package's source (train.py imports torchaudio and more at module level)."""
    spec = importlib.util.find_spec("openwakeword")
    if spec is None:
        pytest.skip("openwakeword is not installed (the Makefile installs it --no-deps)")
    src = (Path(spec.origin).parent / "train.py").read_text()
    init = next(f for c in ast.parse(src).body if isinstance(c, ast.ClassDef) and c.name == "Model"
                for f in c.body if isinstance(f, ast.FunctionDef) and f.name == "__init__")
    branches = {}
    for node in ast.walk(init):
        if isinstance(node, ast.If) and isinstance(node.test, ast.Compare) and \
                isinstance(node.test.comparators[0], ast.Constant) and node.test.comparators[0].value in ("dnn", "rnn"):
            ns = {"nn": torch.nn, "torch": torch}
            body = [s for s in node.body if isinstance(s, ast.ClassDef)]
            exec(compile(ast.Module(body=body, type_ignores=[]), "openwakeword/train.py", "exec"), ns)
            branches[node.test.comparators[0].value] = ns["Net"]
    return branches


def test_heads_match_openwakeword_train_model():
    nets = _package_heads()
    x = torch.randn(3, 16, 96)
    for kind, theirs_cls, ours in (("dnn", nets["dnn"], DnnHead()), ("rnn", nets["rnn"], RnnHead())):
        theirs = theirs_cls((16, 96), 128, 1, 1) if kind == "dnn" else theirs_cls((16, 96), 1)
        ours.load_state_dict(theirs.state_dict(), strict=True)  # same parameter names and shapes
        theirs.eval(), ours.eval()
        with torch.no_grad():
            assert torch.equal(theirs(x), ours(x)), kind
