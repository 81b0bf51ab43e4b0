"""The ``synth`` source: SynthCXR procedural radiographs with raw reports and true labels."""

from __future__ import annotations

from collections.abc import Iterator

from unixlib.data.sources.common import Candidate
from unixlib.data.synth.synthetic import SynthCXR


def candidates(
    n_train: int = 256,
    n_validate: int = 32,
    n_test: int = 32,
    seed: int = 0,
    render_size: int = 64,
) -> Iterator[Candidate]:
    """Yield ``n_train + n_validate + n_test`` SynthCXR samples with ids ``synth-000000``, ...

    Sample indices are consecutive across splits (train first, then validate, then test),
    so changing a split's size moves the rows of the splits after it; the same (seed, sizes)
    always give the same rows. ``render_size`` is the side SynthCXR draws at (``prepare``
    sets it to its ``image_size`` unless given).
    """
    counts = {"train": n_train, "validate": n_validate, "test": n_test}
    for split, n in counts.items():
        if n < 0:
            raise ValueError(f"n_{split} must be >= 0, got {n}")
    generator = SynthCXR(seed=seed, size=render_size)
    index = 0
    for split, n in counts.items():
        for _ in range(n):
            sample = generator.sample(index)
            row_id = f"synth-{index:06d}"
            yield Candidate(
                id=row_id,
                ref=f"SynthCXR(seed={seed}).sample({index})",
                view=sample.view,
                split=split,
                report_raw=sample.report_raw,
                labels=dict(sample.labels),
                image=sample.image,
            )
            index += 1
