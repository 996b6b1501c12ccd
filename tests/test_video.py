"""vlog=true: an MP4 of the first evaluation episode of each evaluation, from pixels or the env's render."""

from __future__ import annotations

import csv
from pathlib import Path

import cv2

from tests.conftest import run_ml


def frames_in(path: Path) -> tuple[int, int, int]:
    video = cv2.VideoCapture(str(path))
    try:
        return int(video.get(cv2.CAP_PROP_FRAME_COUNT)), int(video.get(3)), int(video.get(4))
    finally:
        video.release()


def test_classic_video_has_one_frame_per_step(tmp_path: Path) -> None:
    run_ml("task=random", "Env=Classic", "env.task=CartPole-v1", "evaluate_episodes=1", "vlog=true",
           "progress=false", cwd=tmp_path)
    run = tmp_path / "results/Exp/runs/random/Classic/CartPole-v1/0"
    row = next(csv.DictReader((run / "eval.csv").open()))
    count, width, height = frames_in(run / "videos/step_0.mp4")
    assert (width, height) == (600, 400) and count == int(float(row["length"])) + 1  # reset frame too
    assert [p.name for p in (run / "videos").iterdir()] == ["step_0.mp4"]  # no temporary files left


def test_atari_video_from_pixels(tmp_path: Path) -> None:
    run_ml("task=random", "Env=Atari", "env.game=pong", "env.max_episode_frames=400", "evaluate_episodes=1",
           "vlog=true", "progress=false", cwd=tmp_path)
    run = tmp_path / "results/Exp/runs/random/Atari/pong/0"
    row = next(csv.DictReader((run / "eval.csv").open()))
    count, width, height = frames_in(run / "videos/step_0.mp4")
    assert (width, height) == (84, 84) and count == int(float(row["length"])) + 1
