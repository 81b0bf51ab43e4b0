"""Finding contrast: how strongly images show a finding, against a SynthCXR reference.

Inside the pixels where a case's reference differs from the normal reference (the finding's
region), how much do the images for the case differ from those for the normal case, as a
fraction of the reference's own difference. Two users: Fig. 4 (images generated from the
paper's prompts, notebook 04) and the VAE's finding retention (reconstructions of the
references, notebook 03, :func:`unixlib.eval.vae_quality.finding_retention`).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd


def finding_contrast(
    generated: Mapping[str, np.ndarray],
    references: Mapping[str, np.ndarray],
    normal: str = "normal",
    threshold: float = 0.05,
) -> pd.DataFrame:
    """How strongly generated images show each case's finding, against its SynthCXR reference.

    Args:
        generated: title -> ``(n, H, W)`` images (``fig4.generate``, or the VAE's
            reconstructions), including ``normal``.
        references: title -> ``(H, W)`` SynthCXR renderings of one patient
            (``fig4.synthetic_prompts``), including ``normal``.
        normal: the title of the finding-free case.
        threshold: a pixel is in a case's region when ``|reference - normal reference|``
            exceeds it.
    Returns:
        one row per case other than ``normal``: ``case`` (its title), ``region_px``, ``reference``
        (mean ``|reference - normal reference|`` over the region), ``generated`` (mean over the
        region of the generated difference, case minus normal averaged over samples, signed
        by the reference's direction: denser where the finding is denser, as effusion or a
        device, darker where it is darker, as pneumothorax) and ``ratio`` = generated /
        reference: 1 when the finding is drawn as strongly as in the reference, 0 when the
        images do not differ from the normal prompt's, negative when they differ the other
        way; NaN for an empty region.
    """
    for name, table in (("generated", generated), ("references", references)):
        if normal not in table:
            raise KeyError(f"{name} has no {normal!r} case to compare with")
    size = np.shape(references[normal])  # (H, W)
    for title, images in generated.items():
        sizes = {np.shape(images)[1:], np.shape(references.get(title, references[normal]))}
        if sizes != {size}:
            raise ValueError(
                f"{title}: image sizes {sizes} differ from the normal reference's {size}"
            )
    base_ref = np.asarray(references[normal], dtype=np.float64)
    base_gen = np.asarray(generated[normal], dtype=np.float64).mean(axis=0)  # (H, W)
    rows = []
    for title, images in generated.items():
        if title == normal or title not in references:
            continue
        diff_ref = np.asarray(references[title], dtype=np.float64) - base_ref  # (H, W)
        diff_gen = np.asarray(images, dtype=np.float64).mean(axis=0) - base_gen  # (H, W)
        region = np.abs(diff_ref) > threshold
        ref = float(np.abs(diff_ref[region]).mean()) if region.any() else float("nan")
        gen = float((diff_gen * np.sign(diff_ref))[region].mean()) if region.any() else float("nan")
        rows.append(
            {
                "case": title,
                "region_px": int(region.sum()),
                "reference": ref,
                "generated": gen,
                "ratio": gen / ref,
            }
        )
    return pd.DataFrame(rows, columns=["case", "region_px", "reference", "generated", "ratio"])
