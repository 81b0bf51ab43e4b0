"""UniX: one MoT sequence that reads X-rays into reports and writes reports into X-rays.

Data path of :meth:`UniX.forward` (shapes for a packed batch of B rows, L columns)::

    text ids      -> embed_tokens                                          -> text slots
    ViT pixels    -> SigLIP -> connector                  (Nv, N, D)       -> vit slots
    VAE latents   -> patchify -> x_t -> vae2llm + pos + t  (Ng, T, D)       -> vae slots
    routed tokens -> MoT blocks (one attention over each row)             -> final und/gen norm
    und states    -> lm_head  -> cross-entropy on answer tokens
    gen states    -> llm2vae  -> velocity, MSE to eps - x0 (flow matching, t = 0 is data)
    gen states after block d -> repa_projector -> -cos to frozen encoder features (REPA)

Report decoding lives in ``decoding.py``, image sampling in ``sampling.py`` and the model
directory in ``saving.py``; each gives UniX its methods as a mixin (``generate_report``,
``generate_image``, ``from_pretrained`` / ``save_pretrained``) and reuses the building blocks
here (``embed``, ``run``), so the imports run one way: this module imports them.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from unixlib.data.packing import PackedBatch
from unixlib.model.attention import BatchAttention
from unixlib.model.config import UniXConfig
from unixlib.model.decoding import ReportDecoding
from unixlib.model.flow import (
    TimestepEmbedder,
    interpolate,
    patchify,
    sample_train_timesteps,
    sincos_2d_table,
    velocity_target,
)
from unixlib.model.mot import KVCache, MoTLanguageModel
from unixlib.model.repa import REPAProjector, repa_loss
from unixlib.model.rope import rope_cos_sin
from unixlib.model.routing import Routing
from unixlib.model.sampling import ImageSampling
from unixlib.model.saving import ModelDirectory
from unixlib.model.vae import VAEWrapper, build_autoencoder
from unixlib.model.vision import Connector, build_vision_tower, vit_features


@dataclass
class _Noised:
    """The noised latents of a training batch (``UniX._noise_latents``)."""

    x0: Tensor  # (Ng, T, C p p) clean latent tokens
    eps: Tensor  # (Ng, T, C p p) noise tokens
    timesteps: Tensor  # (Ng,) float32 flow times
    grid: tuple[int, int]  # the latent token grid
    embeds: Tensor  # (Ng * T, D) LLM inputs of x_t


class UniX(ReportDecoding, ImageSampling, ModelDirectory, nn.Module):
    """The unified model; see the module docstring for the data path.

    Submodule names fix the state-dict naming shared with ``weights.py``: ``language_model``,
    ``lm_head``, ``vision_tower``, ``connector``, ``vae2llm``, ``llm2vae``, ``time_embedder``,
    ``repa_projector``, ``vae`` (frozen). The REPA projector always exists (cheap) so that
    checkpoints of every stage share one layout; it only trains when targets are given.
    """

    def __init__(self, config: UniXConfig) -> None:
        super().__init__()
        self.config = config
        d = config.hidden_size
        self.language_model = MoTLanguageModel(config)
        self.lm_head = nn.Linear(d, config.vocab_size, bias=False)  # untied, as Janus-Pro
        self.vision_tower = build_vision_tower(config.vision_config())
        self.connector = Connector(config.vit_hidden_size, d)
        self.vae2llm = nn.Linear(config.latent_token_dim, d)
        self.llm2vae = nn.Linear(d, config.latent_token_dim)
        self.time_embedder = TimestepEmbedder(d)
        self.repa_projector = REPAProjector(d, config.repa_hidden_size, config.repa_target_dim)
        # Only in the "final_states" conditioning ablation (see UniXConfig.gen_conditioning).
        self.cond_proj = nn.Linear(d, d) if config.gen_conditioning == "final_states" else None
        self.vae = VAEWrapper(
            build_autoencoder(config.autoencoder_config()), config.vae_scale, config.vae_shift
        )
        # Fixed 2-D sin-cos table of the latent grid, id = row * max_latent_size + col; not
        # saved (recomputed from the config), so a larger table (stage 3) loads old weights.
        self.register_buffer(
            "latent_pos_embed", sincos_2d_table(d, config.max_latent_size), persistent=False
        )
        self.init_weights()

    # ------------------------------------------------------------------------ initialisation
    @torch.no_grad()
    def init_weights(self) -> None:
        """Normal(0, initializer_range) linears/embeddings of the LLM side, zero biases, zero
        ``llm2vae`` (a new generation head starts by predicting v = 0, as BAGEL), then the
        generation branch copied from the understanding branch. The SigLIP tower and the VAE
        keep their own libraries' initialisation."""
        std = self.config.initializer_range
        for part in (
            self.language_model,
            self.lm_head,
            self.connector,
            self.vae2llm,
            self.time_embedder,
            self.repa_projector,
        ):
            for m in part.modules():
                if isinstance(m, nn.Linear | nn.Embedding):
                    nn.init.normal_(m.weight, std=std)
                if isinstance(m, nn.Linear) and m.bias is not None:
                    nn.init.zeros_(m.bias)
        nn.init.zeros_(self.llm2vae.weight)
        nn.init.zeros_(self.llm2vae.bias)
        if self.cond_proj is not None:  # starts as the identity: the context is the VLM's output
            nn.init.eye_(self.cond_proj.weight)
            nn.init.zeros_(self.cond_proj.bias)
        if self.config.mot:
            self.init_gen_from_und()

    def init_gen_from_und(self) -> None:
        """Generation weights <- understanding weights (after loading a Janus-Pro LLM)."""
        self.language_model.init_gen_from_und()

    def reset_buffers(self) -> None:
        """Recompute non-persistent buffers (after ``to_empty`` from the meta device)."""
        table = sincos_2d_table(self.config.hidden_size, self.config.max_latent_size)
        self.latent_pos_embed = table.to(self.latent_pos_embed.device)

    # ----------------------------------------------------------------------- building blocks
    def embed_vit(self, pixels: Tensor) -> Tensor:
        """(Nv, 3, S, S) preprocessed pixels -> (Nv, N, D) connector outputs."""
        return self.connector(vit_features(self.vision_tower, pixels))

    def embed_latents(self, tokens: Tensor, t: Tensor, grid: tuple[int, int]) -> Tensor:
        """Noisy latent tokens -> LLM inputs.

        Args:
            tokens: (n, h*w, C*p*p) patchified x_t, row-major on the (h, w) token grid.
            t: (n,) flow time of each image.
            grid: (h, w); the top-left (h, w) part of the position table is used.
        Returns:
            (n, h*w, D) = vae2llm(x_t) + pos[row * max_latent_size + col] + temb(t).
        """
        h, w = grid
        m = self.config.max_latent_size
        if h > m or w > m:
            raise ValueError(f"latent grid {grid} exceeds max_latent_size={m}")
        rows = torch.arange(h, device=tokens.device)
        cols = torch.arange(w, device=tokens.device)
        pos_ids = (rows[:, None] * m + cols[None, :]).flatten()  # (h*w,)
        x = self.vae2llm(tokens)  # (n, T, D)
        return x + self.latent_pos_embed[pos_ids].to(x.dtype) + self.time_embedder(t)[:, None]

    def embed(
        self, batch: PackedBatch, vit_embeds: Tensor | None, gen_embeds: Tensor | None
    ) -> tuple[Tensor, Routing]:
        """Assemble the routed input (N, D): text embeddings and the given image embeddings.

        Args:
            vit_embeds: (n_vit_tokens, D) in ``batch.vit_index`` order, or None if there are none.
            gen_embeds: (n_vae_tokens, D) in ``batch.vae_index`` order, or None.
        """
        b, length = batch.input_ids.shape
        text = self.language_model.embed_tokens(batch.input_ids.flatten()[batch.text_index])
        x = text.new_zeros(b * length, text.shape[1])  # (B*L, D)
        x = x.index_copy(0, batch.text_index, text)
        for name, index, emb in (
            ("ViT", batch.vit_index, vit_embeds),
            ("latent", batch.vae_index, gen_embeds),
        ):
            if index.numel() == 0 and (emb is None or emb.shape[0] == 0):
                continue
            if emb is None or emb.shape[0] != index.numel():
                got = "nothing" if emb is None else f"{emb.shape[0]} tokens"
                raise ValueError(f"the batch has {index.numel()} {name} slots, got {got}")
            x = x.index_copy(0, index, emb.to(x.dtype))
        route = torch.cat([batch.und_index, batch.gen_index])
        routing = Routing(route, batch.und_index.numel(), b, length)
        return x.index_select(0, route), routing

    def condition_context(
        self,
        h: Tensor,
        routing: Routing,
        position_ids: Tensor,
        attention: BatchAttention | Tensor,
    ) -> tuple[Tensor, Routing]:
        """The ``final_states`` ablation's first pass (identity under ``attention``).

        The understanding rows (the report contexts) run through the understanding branch
        alone; their final states, projected by ``cond_proj``, replace their input embeddings,
        and every row is routed to the generation branch for the second pass. Exact: no context
        token attends to a later position, so the latent slots (zero in the first pass) are
        never read. Without gradient when the understanding branch is frozen.

        Args:
            h: (N, D) routed input embeddings; routing: their routing (``embed``).
        Returns:
            (N, D) inputs of the second pass, all rows routed to ``gen``.
        """
        if self.cond_proj is None:
            return h, routing
        n = routing.n_und
        context = Routing(routing.index[:n], n, routing.batch, routing.length)
        frozen = self.language_model.freeze_und or not torch.is_grad_enabled()
        with torch.set_grad_enabled(not frozen):
            states, _ = self.run(h[:n], context, position_ids, attention)
        h = torch.cat([self.cond_proj(states.to(h.dtype)), h[n:]])
        return h, Routing(routing.index, 0, routing.batch, routing.length)

    def run(
        self,
        h: Tensor,
        routing: Routing,
        position_ids: Tensor,
        attention: BatchAttention | Tensor,
        cache: KVCache | None = None,
        commit: bool = True,
        capture_layer: int | None = None,
    ) -> tuple[Tensor, Tensor | None]:
        """The MoT stack on routed inputs (see ``MoTLanguageModel.forward``); builds RoPE.
        ``attention``: a batch's :class:`BatchAttention`, or a dense (B, 1, L, Lk) bool mask."""
        cos, sin = rope_cos_sin(position_ids, self.config.head_dim, self.config.rope_theta)
        return self.language_model(h, routing, cos, sin, attention, cache, commit, capture_layer)

    # ------------------------------------------------------------------------------ training
    def forward(
        self,
        batch: PackedBatch,
        vit_pixels: Tensor | None = None,
        latents: Tensor | None = None,
        *,
        timesteps: Tensor | None = None,
        noise: Tensor | None = None,
        repa_target: Tensor | None = None,
        repa_grid: tuple[int, int] | None = None,
        generator: torch.Generator | None = None,
    ) -> dict[str, Tensor]:
        """Losses of a packed batch; every term is summed per token then normalised here.

        Args:
            batch: a :class:`PackedBatch` (on the model's device) from ``packing.pack``, in
                either layout (padded rows, or every sample packed into one row).
            vit_pixels: (Nv, 3, S, S) float, ``vision.preprocess_for_vit`` output, one per
                vit split in batch order; None when the batch has none.
            latents: (Ng, C, h, w) float normalised VAE latents x0 (``vae.encode``), one per
                vae split in batch order, all of one size; None when the batch has none.
            timesteps: (Ng,) float flow times in [0, 1]; t = 0 is the clean latent. The trainer
                draws them (``TrainConfig.timestep_shift``, train/batches.py); the default is
                the unshifted logit-normal draw ``sigmoid(N(0, 1))``.
            noise: (Ng, C, h, w) float eps (default: standard normal).
            repa_target: (Ng, M, Dt) float frozen-encoder patch features of the clean images;
                REPA is computed only when given (stage 2).
            repa_grid: (H, W) grid of ``repa_target``'s M tokens.
            generator: for the default timesteps and noise (reproducible runs).
        Returns:
            ``ce`` (mean over answer tokens), ``flow`` (mean over latent tokens with loss of the
            per-token mean squared error), ``repa`` (mean negative cosine), ``loss`` =
            their plain sum (the trainer weights the terms itself: ``TrainConfig.ce_weight``,
            ``flow_weight``, ``repa_weight``), the counts
            ``n_ce_tokens`` and ``n_flow_tokens`` (for re-normalising across devices), and
            ``timesteps`` (Ng,) used (only when latents are given). Absent terms are 0 with
            count 0.
        """
        if repa_target is not None and repa_grid is None:
            raise ValueError("repa_target given without repa_grid")
        noised = None
        if latents is not None:
            noised = self._noise_latents(batch, latents, timesteps, noise, generator)
        use_repa = repa_target is not None and noised is not None
        capture = self.config.repa_layer_index if use_repa else None
        h, routing, n_und, captured = self._hidden_states(batch, vit_pixels, noised, capture)
        zero = h.new_zeros((), dtype=torch.float32)
        out = {"ce": zero, "flow": zero, "repa": zero}
        n_ce, n_flow = batch.ce_index.numel(), 0
        if n_ce:
            out["ce"] = self._ce_loss(batch, h, routing)
        if noised is not None:
            out["timesteps"] = noised.timesteps
            out["flow"], n_flow = self._flow_loss(batch, h[n_und:], noised)
        if use_repa:
            out["repa"] = self._repa_loss(captured[n_und:], noised, repa_target, repa_grid)
        out["loss"] = out["ce"] + out["flow"] + out["repa"]
        out["n_ce_tokens"] = torch.tensor(n_ce, device=h.device)
        out["n_flow_tokens"] = torch.tensor(n_flow, device=h.device)
        return out

    # The steps of ``forward``, in order.
    def _noise_latents(
        self,
        batch: PackedBatch,
        latents: Tensor,
        timesteps: Tensor | None,
        noise: Tensor | None,
        generator: torch.Generator | None,
    ) -> _Noised:
        """x_t = (1 - t) x0 + t eps as latent tokens, and their LLM inputs (see ``forward``)."""
        p = self.config.latent_patch_size
        grid = self._latent_grid(batch, latents)
        x0 = patchify(latents, p)  # (Ng, T, C p p)
        draw_on = generator.device if generator is not None else latents.device
        if timesteps is None:
            timesteps = sample_train_timesteps(len(latents), 1.0, generator, draw_on)
        timesteps = timesteps.to(latents.device, torch.float32)
        if noise is None:
            noise = torch.randn(latents.shape, generator=generator, device=draw_on)
        eps = patchify(noise.to(latents), p)
        embeds = self.embed_latents(interpolate(x0, eps, timesteps), timesteps, grid)
        return _Noised(x0, eps, timesteps, grid, embeds.flatten(0, 1))

    def _hidden_states(
        self,
        batch: PackedBatch,
        vit_pixels: Tensor | None,
        noised: _Noised | None,
        capture_layer: int | None,
    ) -> tuple[Tensor, Routing, int, Tensor | None]:
        """The MoT stack on the batch: (routed output, its routing, the number of rows before
        the latent rows, the captured block output or None)."""
        vit_embeds = None
        if vit_pixels is not None:
            vit_embeds = self.embed_vit(vit_pixels).flatten(0, 1)  # (Nv*N, D)
        h, routing = self.embed(batch, vit_embeds, noised.embeds if noised else None)
        attention = BatchAttention(batch)  # the kernel and its masks, once for every block
        n_und = routing.n_und  # the latent rows are h[n_und:] (also after condition_context)
        if self.cond_proj is not None:
            if batch.ce_index.numel() or batch.vit_index.numel():
                raise ValueError(
                    "gen_conditioning='final_states' trains generation only "
                    "(task_ratio 0:g): this batch has understanding examples"
                )
            h, routing = self.condition_context(h, routing, batch.position_ids, attention)
        h, captured = self.run(
            h, routing, batch.position_ids, attention, capture_layer=capture_layer
        )
        return h, routing, n_und, captured

    def _ce_loss(self, batch: PackedBatch, h: Tensor, routing: Routing) -> Tensor:
        """Mean cross-entropy of the answer tokens."""
        logits = self.lm_head(h[routing.rows_of(batch.ce_index)]).float()  # (Nce, V)
        return F.cross_entropy(logits, batch.ce_targets, reduction="sum") / batch.ce_index.numel()

    def _flow_loss(self, batch: PackedBatch, h_latent: Tensor, noised: _Noised) -> tuple:
        """(mean per-token MSE of the velocity over latent tokens with loss, their count)."""
        v = self.llm2vae(h_latent).float()  # (Ng*T, C p p), vae_index order
        target = velocity_target(noised.x0, noised.eps).flatten(0, 1)
        err = (v - target).pow(2).mean(-1)  # (Ng*T,)
        weight = batch.flow_mask.flatten()[batch.vae_index].to(err.dtype)
        n_flow = int(weight.sum().item())
        if not n_flow:
            return h_latent.new_zeros((), dtype=torch.float32), 0
        return (err * weight).sum() / n_flow, n_flow

    def _repa_loss(
        self, captured: Tensor, noised: _Noised, target: Tensor, target_grid: tuple[int, int]
    ) -> Tensor:
        """REPA's mean negative cosine of the projected latent tokens to the target features."""
        cfg = self.config
        n = len(noised.x0)
        pred = self.repa_projector(captured.unflatten(0, (n, -1))).float()  # (Ng, T, Dt)
        loss = repa_loss(
            pred,
            noised.grid,
            target.float(),
            tuple(target_grid),
            official_1d_interp=cfg.repa_official_1d_interp,
        )
        if cfg.repa_official_batch_factor:  # the release's extra 1/B (model/repa.py)
            loss = loss / n
        return loss

    def _latent_grid(self, batch: PackedBatch, latents: Tensor) -> tuple[int, int]:
        """The token grid of ``latents``; error unless every vae split of the batch has it."""
        p = self.config.latent_patch_size
        grid = (latents.shape[-2] // p, latents.shape[-1] // p)
        if latents.shape[0] != len(batch.vae_grids) or any(g != grid for g in batch.vae_grids):
            raise ValueError(
                f"latents {tuple(latents.shape)} (grid {grid} at patch {p}) do not "
                f"match the batch's vae splits {batch.vae_grids}"
            )
        return grid

    # ---------------------------------------------------------------------------- inference
    @torch.no_grad()
    def encode_images(self, images: Tensor) -> Tensor:
        """(B, 1, H, W) pixels in [0, 1] -> (B, C, H/f, W/f) normalised latents."""
        return self.vae.encode(images * 2 - 1)


def parameter_counts(config: UniXConfig) -> dict[str, int]:
    """Parameter counts by part, computed on the meta device (no weights are allocated).

    Keys: ``parameters_total``, ``und_branch`` / ``gen_branch`` (blocks + final norm of each),
    ``shared`` (embeddings + lm_head), ``vision`` (SigLIP + connector), ``generation_io``
    (vae2llm, llm2vae, time embedder; cond_proj in the final_states ablation), ``repa_projector``, ``vae``, ``trainable_llm_per_branch``
    (one branch + shared: the paper's "1.5B per branch" view).
    """
    with torch.device("meta"):
        model = UniX(config)
    counts = dict.fromkeys(
        ["und_branch", "gen_branch", "shared", "vision", "generation_io", "repa_projector", "vae"],
        0,
    )
    for name, p in model.named_parameters():
        if name.startswith("language_model.layers."):
            key = "und_branch" if ".und." in name else "gen_branch"
        elif name.startswith("language_model.norm_"):
            key = "und_branch" if name.startswith("language_model.norm_und") else "gen_branch"
        elif name.startswith(("language_model.embed_tokens", "lm_head")):
            key = "shared"
        elif name.startswith(("vision_tower", "connector")):
            key = "vision"
        elif name.startswith(("vae2llm", "llm2vae", "time_embedder", "cond_proj")):
            key = "generation_io"
        elif name.startswith("repa_projector"):
            key = "repa_projector"
        elif name.startswith("vae."):
            key = "vae"
        else:
            raise KeyError(f"parameter_counts: unclassified parameter {name}")
        counts[key] += p.numel()
    counts["parameters_total"] = sum(counts.values())
    counts["trainable_llm_per_branch"] = counts["und_branch"] + counts["shared"]
    return counts
