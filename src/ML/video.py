"""Evaluation videos (``vlog=true``): frames of an episode written as an MP4 in the run directory."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ML.fileio import atomic_write


def as_frame(obs: np.ndarray, channels: int) -> np.ndarray | None:
    """An (H, W, 3) uint8 picture of an image observation's newest frame; None for non-images."""
    if obs.ndim != 3 or obs.dtype != np.uint8:
        return None
    frame = np.moveaxis(obs[-channels:], 0, -1)
    return np.repeat(frame, 3, axis=-1) if frame.shape[-1] == 1 else frame[..., :3]


def write_mp4(path: Path, frames: list[np.ndarray], fps: int = 30) -> None:
    """Write RGB frames as MP4 (OpenCV's mp4v), atomically."""
    import cv2

    height, width = frames[0].shape[:2]

    def write(tmp: Path) -> None:
        mp4 = tmp.with_suffix(".mp4")  # OpenCV picks the container from the suffix
        fourcc = cv2.VideoWriter_fourcc(*"mp4v")  # type: ignore[attr-defined]  # (missing from cv2's stubs)
        writer = cv2.VideoWriter(str(mp4), fourcc, fps, (width, height))
        try:
            for frame in frames:
                writer.write(cv2.cvtColor(np.ascontiguousarray(frame), cv2.COLOR_RGB2BGR))
        finally:
            writer.release()
        mp4.replace(tmp)

    atomic_write(path, write)
