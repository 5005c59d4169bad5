"""The times in predictions.csv are when each frame is shown: a slow-motion video's 240 fps is its rate (it was
taken as 25, stretching a 1 s clip to 9.6 s), and a phone's variable frame rate gives each frame the time the
file says, not its number over the average rate."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest


def ffmpeg_clip(path: Path, *args: str) -> Path:
    subprocess.run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin", "-f", "lavfi", "-i", "testsrc=s=64x48:r=30",
                    *args, "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", str(path)],
                   check=True, timeout=60)
    return path


@pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="ffmpeg (the command) not installed")
def test_each_frame_in_the_csv_has_the_time_it_is_shown(detect, scripted_model, tmp_path, kit):
    folder = tmp_path / "in"
    folder.mkdir()
    ffmpeg_clip(folder / "slowmo.mp4", "-vf", "fps=240", "-frames:v", "60")  # a quarter second at 240 fps
    # 30 frames at 30 fps, then one every half second: 35 frames in 3.5 s (an average of 10 fps)
    ffmpeg_clip(folder / "vfr.mp4", "-frames:v", "35", "-vf", "setpts='if(lt(N,30),N/30,1+(N-29)/2)/TB'",
                "-fps_mode", "passthrough")
    weights = scripted_model([(10, 10, 40, 40, 0, 0.9)], image_wh=(64, 48))  # a face on every frame: a row each
    proc = detect("--source", folder, "--weights", weights, "--save-csv", "--nosave")
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    rows = kit.read_csv_rows(tmp_path / "runs" / "exp" / "predictions.csv")[1]
    times = {name: {int(r["frame"]): float(r["timestamp"]) for r in rows if r["source"].endswith(name)}
             for name in ("slowmo.mp4", "vfr.mp4")}
    assert len(times["slowmo.mp4"]) == 60 and times["slowmo.mp4"][59] == pytest.approx(59 / 240, abs=1e-3)
    assert times["vfr.mp4"][29] == pytest.approx(29 / 30, abs=1e-3)
    assert [times["vfr.mp4"][i] for i in range(30, 35)] == pytest.approx([1.5, 2.0, 2.5, 3.0, 3.5], abs=1e-3)
