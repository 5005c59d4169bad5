"""Weight averaging of two fine-tunes of one network (a "model soup", WiSE-FT).

A model fine-tuned for a new condition (camera corruptions) forgets some of what it knew; the average of its
weights and the model it started from often keeps most of both, because fine-tunes of one start stay in one
basin of the loss. Every floating tensor (BatchNorm's running statistics included) is mixed:

    averaged = (1 - alpha) * a + alpha * b

The result is an ordinary Ultralytics checkpoint (a's metadata, no optimizer), for val.py, export.py and
detect.py.
"""

from __future__ import annotations

from pathlib import Path

from maskdet.errors import UserError


def average_checkpoints(a: str | Path, b: str | Path, alpha: float) -> dict:
    """The checkpoint (1 - alpha) a + alpha b, in memory: every input is checked before anything is written."""
    import torch

    if not 0.0 <= alpha <= 1.0:
        raise UserError(f"alpha must be between 0 and 1, got {alpha}")
    loaded = []
    for path in (Path(a), Path(b)):
        if not path.is_file():
            raise UserError("no such checkpoint", path)
        try:
            checkpoint = torch.load(path, map_location="cpu", weights_only=False)
            model = (checkpoint.get("ema") or checkpoint["model"]).float()
        except Exception as exc:  # pickle, zip and key errors alike: not an Ultralytics checkpoint
            raise UserError(f"not an Ultralytics checkpoint ({type(exc).__name__})", path) from None
        loaded.append((checkpoint, model))
    (checkpoint, first), (_, second) = loaded
    ours, theirs = first.state_dict(), second.state_dict()
    if ours.keys() != theirs.keys() or any(ours[k].shape != theirs[k].shape for k in ours):
        raise UserError(f"{a} and {b} are not the same network (their layers differ): only fine-tunes of one model average")
    first.load_state_dict({k: (1 - alpha) * v + alpha * theirs[k] if v.is_floating_point() else v for k, v in ours.items()})
    averaged = {k: v for k, v in checkpoint.items() if k not in ("model", "ema", "optimizer")}
    averaged.update(model=first.half(), ema=None, optimizer=None, epoch=-1,
                    averaged={"a": str(a), "b": str(b), "alpha": alpha})
    return averaged


def save_checkpoint(checkpoint: dict, out: str | Path) -> Path:
    """Written atomically: a kill never leaves half a checkpoint under the final name."""
    import torch

    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    temporary = out.with_name(f".{out.name}.tmp")
    torch.save(checkpoint, temporary)
    temporary.replace(out)
    return out
