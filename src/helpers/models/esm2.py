"""ESM2 protein language models fine-tuned by masked language modelling (Supplementary S.II.6).

The paper takes the pretrained ESM2 models of three sizes from HuggingFace
(``facebook/esm2_t6_8M_UR50D``, ``esm2_t12_35M_UR50D``, ``esm2_t30_150M_UR50D``), fine-tunes each
for one epoch on the (substituted) training sequences with 15 % masking, AdamW at lr 1e-4 and
batch 8 (Table S5), and represents a sequence by the mean of the last hidden layer.

Here the three sizes are ``make_model("ESM2-8M" | "ESM2-35M" | "ESM2-150M", profile=...)``:

``paper``
    the pretrained weights and tokenizer files through ``data_manifest.yml`` (entries
    ``esm2/<checkpoint>/...``; :func:`pretrained_dir`) and the authors' training loop: one epoch,
    batch 8, AdamW (lr 1e-4, PyTorch defaults otherwise, no schedule), 15 % of the tokens other
    than ``<cls>``/``<pad>`` replaced by ``<mask>``, the loss on every token (the authors passed
    the unmasked input as labels), training sequences cut to 1,024 tokens, embeddings of the
    first 512 tokens averaged with ``<cls>`` and ``<eos>`` (their ``max_length=512`` and
    attention-mask pooling).
``quick``
    pretrained weights are not reachable on the book's machines: a small model of the same
    architecture (rotary ESM2 layers, the ESM2 vocabulary of 33 tokens) trained from scratch,
    loss on the masked tokens only, six epochs on random 128-residue windows of each
    sequence; embeddings average the residues of the whole sequence.
``smoke``
    the quick model, smaller and shorter (seconds).

Tokens are the ESM2 tokenizer's (:data:`ESM2_VOCAB`, one token per residue, ``<cls>`` first,
``<eos>`` last, an unknown letter is ``<unk>``), computed with a lookup table
(:func:`tokenize`, tested against ``transformers.EsmTokenizer`` built from the same vocabulary).
"""

from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np

from .._torch import torch_threads
from ._common import BaseModel, NotFittedError, check_profile, pad_tokens

__all__ = [
    "ESM2_8M",
    "ESM2_35M",
    "ESM2_150M",
    "ESM2Config",
    "ESM2Model",
    "ESM2_SIZES",
    "ESM2_VOCAB",
    "PAPER_PARAMETERS",
    "esm_config",
    "pretrained_dir",
    "SWEEP_MODELS",
    "tokenize",
]

#: The ESM2 tokenizer's vocabulary (``vocab.txt`` of every ESM2 checkpoint), in id order.
ESM2_VOCAB = (
    "<cls>", "<pad>", "<eos>", "<unk>",
    "L", "A", "G", "V", "S", "E", "R", "T", "I", "D", "P", "K", "Q", "N", "F", "Y", "M", "H",
    "W", "C", "X", "B", "U", "Z", "O", ".", "-", "<null_1>", "<mask>",
)
CLS, PAD, EOS, UNK, MASK = 0, 1, 2, 3, 32
_LOOKUP = np.full(256, UNK, dtype=np.int64)
for _i, _tok in enumerate(ESM2_VOCAB):
    if len(_tok) == 1:
        _LOOKUP[ord(_tok)] = _i

#: The paper's three sizes: checkpoint name, layers, hidden size, heads, feed-forward size.
ESM2_SIZES = {
    "8M": ("esm2_t6_8M_UR50D", 6, 320, 20, 1280),
    "35M": ("esm2_t12_35M_UR50D", 12, 480, 20, 1920),
    "150M": ("esm2_t30_150M_UR50D", 30, 640, 20, 2560),
}
#: The sizes a sequence chapter sweeps per profile (the 150M stand-in is left out at quick to
#: keep the chapter within its CPU budget).
SWEEP_MODELS = {
    "smoke": ("ESM2-8M",),
    "quick": ("ESM2-8M", "ESM2-35M"),
    "paper": ("ESM2-8M", "ESM2-35M", "ESM2-150M"),
}
#: Parameter counts the paper quotes for the three sizes.
PAPER_PARAMETERS = {"8M": 7.8e6, "35M": 35e6, "150M": 148e6}


def tokenize(sequences, *, max_length: int | None = None) -> list[np.ndarray]:
    """ESM2 token ids of each sequence: ``<cls>``, one id per residue, ``<eos>``.

    ``max_length`` (tokens, with the two special ones) truncates as the HuggingFace tokenizer
    does with ``truncation=True``: the first ``max_length - 2`` residues are kept.

    Examples
    --------
    >>> tokenize(["MKV*"])[0].tolist()
    [0, 20, 15, 7, 3, 2]
    >>> tokenize(["MKVL"], max_length=4)[0].tolist()
    [0, 20, 15, 2]
    """
    keep = None if max_length is None else int(max_length) - 2
    if keep is not None and keep < 1:
        msg = f"max_length must be at least 3 tokens, got {max_length}"
        raise ValueError(msg)
    out = []
    for s in sequences:
        body = _LOOKUP[np.frombuffer(str(s)[:keep].encode("ascii", errors="replace"), np.uint8)]
        out.append(np.concatenate(([CLS], body, [EOS])).astype(np.int64))
    return out


def esm_config(num_hidden_layers: int, hidden_size: int, num_attention_heads: int,
               intermediate_size: int):
    """A ``transformers.EsmConfig`` with the ESM2 settings (rotary positions, token dropout,
    33-token vocabulary) and the given dimensions."""
    from transformers import EsmConfig

    return EsmConfig(
        vocab_size=len(ESM2_VOCAB),
        mask_token_id=MASK,
        pad_token_id=PAD,
        hidden_size=hidden_size,
        num_hidden_layers=num_hidden_layers,
        num_attention_heads=num_attention_heads,
        intermediate_size=intermediate_size,
        hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0,
        max_position_embeddings=1026,
        position_embedding_type="rotary",
        layer_norm_eps=1e-5,
        emb_layer_norm_before=False,
        token_dropout=True,
        hidden_act="gelu",
    )


def pretrained_dir(checkpoint: str) -> Path:
    """Local folder of a pretrained checkpoint, every file fetched through the manifest.

    The files are the manifest entries whose keys start with ``esm2/<checkpoint>/``
    (``config.json``, ``model.safetensors``, ``vocab.txt``, ...); the folder is passed to
    ``from_pretrained``.  See :func:`helpers.data.fetch_group`.
    """
    from helpers.data import fetch_group

    return fetch_group(f"esm2/{checkpoint}/")


def _esm2_profiles() -> dict[tuple[str, str], dict]:
    """What each (profile, size) sets of :class:`ESM2Config`: ``paper`` the released
    checkpoints' shapes; ``quick`` and ``smoke`` small stand-ins trained from scratch, the
    larger paper size getting the larger stand-in."""
    table = {}
    for size, (checkpoint, layers, hidden, heads, ffn) in ESM2_SIZES.items():
        table["paper", size] = {"checkpoint": checkpoint, "num_hidden_layers": layers,
                                "hidden_size": hidden, "num_attention_heads": heads,
                                "intermediate_size": ffn}
        scale = {"8M": 1, "35M": 2, "150M": 3}[size]
        common = {"checkpoint": None, "embed_max_length": None, "pool_special_tokens": False,
                  "loss_on_all_tokens": False, "lr": 1e-3, "eval_batch_size": 64,
                  "n_threads": 1, "batch_size": 16}
        table["quick", size] = {**common, "num_hidden_layers": 1 + scale,
                                "hidden_size": 32 * scale, "num_attention_heads": 4,
                                "intermediate_size": 64 * scale, "crop_length": 128,
                                "epochs": 6, "eval_every": 10}
        table["smoke", size] = {**common, "num_hidden_layers": 1, "hidden_size": 16 * scale,
                                "num_attention_heads": 2, "intermediate_size": 32 * scale,
                                "crop_length": 64, "epochs": 1, "eval_every": 5}
    return table


#: See :func:`_esm2_profiles`.
ESM2_PROFILES = _esm2_profiles()


@dataclass(frozen=True)
class ESM2Config:
    """Hyperparameters of the ESM2 fine-tuning (Supplementary Table S5) and of the stand-ins.

    ``checkpoint`` names the pretrained weights (manifest entries ``esm2/<checkpoint>/...``);
    ``None`` builds the architecture given by ``num_hidden_layers`` … ``intermediate_size``
    from scratch.  ``crop_length`` cuts each training sequence to a random window of that many
    residues (``None``: the first ``max_length - 2``).  ``loss_on_all_tokens`` uses the
    unmasked input as labels (the authors' loop) instead of the masked tokens only;
    ``pool_special_tokens`` averages ``<cls>``/``<eos>`` with the residues (the authors'
    pooling); ``embed_max_length`` truncates the sequences before embedding (the authors: 512).
    """

    size: str = "8M"
    checkpoint: str | None = "esm2_t6_8M_UR50D"
    num_hidden_layers: int = 6
    hidden_size: int = 320
    num_attention_heads: int = 20
    intermediate_size: int = 1280
    max_length: int = 1024
    crop_length: int | None = None
    embed_max_length: int | None = 512
    pool_special_tokens: bool = True
    mask_probability: float = 0.15
    loss_on_all_tokens: bool = True
    lr: float = 1e-4
    weight_decay: float = 0.01
    batch_size: int = 8
    epochs: int = 1
    eval_batch_size: int = 16
    eval_every: int = 50
    device: str = "auto"
    n_threads: int | None = None
    profile: str = "paper"
    seed: int = 0

    @classmethod
    def for_profile(cls, profile: str = "quick", *, seed: int = 0, size: str = "8M"):
        check_profile(profile)
        if size not in ESM2_SIZES:
            msg = f"size must be one of {sorted(ESM2_SIZES)}, got {size!r}"
            raise ValueError(msg)
        return cls(size=size, **ESM2_PROFILES[profile, size], profile=profile, seed=seed)

    def esm_config(self):
        return esm_config(self.num_hidden_layers, self.hidden_size, self.num_attention_heads,
                          self.intermediate_size)


def _pad(seqs: list[np.ndarray]):
    return pad_tokens(seqs, PAD)


def _crop(tokens: np.ndarray, length: int | None, rng) -> np.ndarray:
    """A random window of ``length`` residues (with ``<cls>``/``<eos>`` around it)."""
    body = tokens[1:-1]
    if length is None or body.size <= length:
        return tokens
    start = int(rng.integers(0, body.size - length + 1))
    return np.concatenate(([CLS], body[start : start + length], [EOS]))


class ESM2Model(BaseModel):
    """ESM2 masked-language model; embedding = mean of the last hidden layer.

    Fit on a :class:`~helpers.datasets.sequences.SequenceData` (``y`` is ignored: the model is
    self-supervised); ``val`` (another ``SequenceData``) gives the validation loss recorded in
    ``history_`` (no early stopping: the paper trains one epoch).  Runs on a GPU when there is
    one (bf16 autocast where supported).

    Examples
    --------
    >>> from helpers.datasets.sequences import SequenceData
    >>> from helpers.models import make_model
    >>> data = SequenceData(["MFVFLVLLPLVSSQCVNLTTRTQ", "MFVFLVLLPLVSSQCVNLTTRTG"] * 8)
    >>> model = make_model("ESM2-8M", profile="smoke").fit(data, progress=False)
    >>> model.embed(data).shape
    (16, 16)
    """

    name: ClassVar[str] = "ESM2"
    config_class = ESM2Config
    size: ClassVar[str] = "8M"

    def __init__(self, config=None, **overrides):
        if config is None:
            config = self.config_class.for_profile("quick")
        super().__init__(config, **overrides)
        self.module_ = None

    @property
    def is_fitted(self) -> bool:
        return self.module_ is not None

    # -- protocol -------------------------------------------------------------------------------
    def fit(self, data, *, y=None, val=None, progress: bool = True):
        """Fine-tune (or train from scratch) on the sequences of ``data``; see the class doc."""
        seqs = _sequences_of(data, "data")
        val_seqs = _sequences_of(val, "val") if val is not None else None
        with torch_threads(self.config.n_threads):
            self._train(seqs, val_seqs, progress=progress)
        return self

    def embed(self, data) -> np.ndarray:
        """Mean of the last hidden layer over each sequence's residues (with ``<cls>``/``<eos>``
        when ``pool_special_tokens``), ``(n, hidden_size)`` float32."""
        import torch

        self._check_fitted()
        t0 = time.perf_counter()
        cfg = self.config
        tokens = tokenize(_sequences_of(data, "data"), max_length=cfg.embed_max_length)
        Z = np.zeros((len(tokens), self.module_.config.hidden_size), dtype=np.float32)
        order = np.argsort([-len(t) for t in tokens], kind="stable")
        base = self.module_.esm
        self.module_.eval()
        with torch_threads(cfg.n_threads), torch.no_grad():
            for i in range(0, len(order), cfg.eval_batch_size):
                idx = order[i : i + cfg.eval_batch_size]
                ids, att = _pad([tokens[k] for k in idx])
                with self._autocast():
                    h = base(input_ids=ids.to(self.device_),
                             attention_mask=att.to(self.device_)).last_hidden_state
                w = att.clone()
                if not cfg.pool_special_tokens:
                    w[:, 0] = 0
                    w[ids == EOS] = 0
                w = w.to(self.device_).unsqueeze(-1).float()
                Z[idx] = ((h.float() * w).sum(1) / w.sum(1).clamp(min=1e-9)).cpu().numpy()
        self.embed_seconds_ = time.perf_counter() - t0
        return Z

    def _n_parameters(self) -> int:
        return int(self.module_.num_parameters())

    def _check_fitted(self) -> None:
        if not self.is_fitted:
            msg = f"ESM2-{self.config.size} model is not fitted yet: call .fit(data) first"
            raise NotFittedError(msg)

    def __repr__(self) -> str:
        state = "fitted" if self.is_fitted else "not fitted"
        cfg = self.config
        return (f"ESM2Model(size={cfg.size!r}, profile={cfg.profile!r}, seed={cfg.seed}, "
                f"{state})")

    # -- parameter counts -------------------------------------------------------------------------
    @staticmethod
    def count_parameters(config: ESM2Config) -> int:
        """Parameters of ``EsmForMaskedLM`` for ``config``, instantiated on PyTorch's ``meta``
        device (no memory, no weights); the output layer is tied to the token embeddings and
        counted once, as ``num_parameters()`` does.

        Examples
        --------
        >>> n = ESM2Model.count_parameters(ESM2Config.for_profile("paper", size="8M"))
        >>> n, n + 1026 * 320  # + the unused position table of the released checkpoints
        (7512474, 7840794)
        """
        import torch
        from transformers import EsmForMaskedLM

        with torch.device("meta"):
            model = EsmForMaskedLM(config.esm_config())
        return int(model.num_parameters())

    # -- training -------------------------------------------------------------------------------
    def _device(self):
        import torch

        if self.config.device != "auto":
            return torch.device(self.config.device)
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")

    def _autocast(self):
        import contextlib

        import torch

        if self.autocast_dtype_ is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device_.type, dtype=self.autocast_dtype_)

    def _build(self):
        from transformers import EsmForMaskedLM

        cfg = self.config
        if cfg.checkpoint is None:
            return EsmForMaskedLM(cfg.esm_config())
        folder = pretrained_dir(cfg.checkpoint)
        vocab = folder / "vocab.txt"
        if vocab.exists():
            found = tuple(vocab.read_text().split())
            if found != ESM2_VOCAB:
                msg = f"{vocab} is not the ESM2 vocabulary (33 tokens, <cls> first)"
                raise ValueError(msg)
        return EsmForMaskedLM.from_pretrained(folder)

    def _mask(self, ids, generator):
        """The authors' masking: 15 % of the tokens other than <cls>/<pad> become <mask>."""
        import torch

        cfg = self.config
        rand = torch.rand(ids.shape, generator=generator)
        chosen = (rand < cfg.mask_probability) & (ids != CLS) & (ids != PAD)
        labels = ids.clone()
        if cfg.loss_on_all_tokens:
            labels[ids == PAD] = -100
        else:
            labels[~chosen] = -100
        masked = ids.clone()
        masked[chosen] = MASK
        return masked, labels

    def _train(self, seqs, val_seqs, *, progress: bool):
        import torch
        from tqdm.auto import tqdm

        cfg = self.config
        torch.manual_seed(cfg.seed)
        rng = np.random.default_rng(cfg.seed)
        gen = torch.Generator().manual_seed(cfg.seed)
        device = self._device()
        self.device_ = device
        self.autocast_dtype_ = (
            torch.bfloat16 if device.type == "cuda" and torch.cuda.is_bf16_supported() else None
        )
        module = self._build().to(device)
        optimizer = torch.optim.AdamW(module.parameters(), lr=cfg.lr,
                                      weight_decay=cfg.weight_decay)
        tokens = tokenize(seqs, max_length=cfg.max_length)
        val_tokens = tokenize(val_seqs, max_length=cfg.max_length) if val_seqs else []
        n_steps = cfg.epochs * math.ceil(len(tokens) / cfg.batch_size)

        def val_loss() -> float:
            if not val_tokens:
                return float("nan")
            module.eval()
            g = torch.Generator().manual_seed(cfg.seed + 1)
            r = np.random.default_rng(cfg.seed + 1)
            tot = n = 0.0
            with torch.no_grad():
                for i in range(0, len(val_tokens), cfg.eval_batch_size):
                    chunk = val_tokens[i : i + cfg.eval_batch_size]
                    b = [_crop(t, cfg.crop_length, r) for t in chunk]
                    ids, att = _pad(b)
                    masked, labels = self._mask(ids, g)
                    k = float((labels != -100).sum())
                    with self._autocast():
                        out = module(input_ids=masked.to(device), attention_mask=att.to(device),
                                     labels=labels.to(device))
                    tot += float(out.loss) * k
                    n += k
            module.train()
            return tot / max(n, 1.0)

        history = {"step": [], "train_loss": [], "val_loss": [], "seconds": []}
        t0 = time.perf_counter()
        step, running, n_running = 0, 0.0, 0
        module.train()
        bar = tqdm(total=n_steps, desc=f"ESM2-{cfg.size}", disable=not progress)
        for _epoch in range(cfg.epochs):
            for idx in np.array_split(rng.permutation(len(tokens)),
                                      math.ceil(len(tokens) / cfg.batch_size)):
                ids, att = _pad([_crop(tokens[k], cfg.crop_length, rng) for k in idx])
                masked, labels = self._mask(ids, gen)
                if not bool((labels != -100).any()):
                    continue
                with self._autocast():
                    loss = module(input_ids=masked.to(device), attention_mask=att.to(device),
                                  labels=labels.to(device)).loss
                loss.backward()
                optimizer.step()
                optimizer.zero_grad(set_to_none=True)
                step += 1
                running += float(loss.detach())
                n_running += 1
                bar.update(1)
                if step % cfg.eval_every == 0 or step == n_steps:
                    history["step"].append(step)
                    history["train_loss"].append(running / n_running)
                    history["val_loss"].append(val_loss())
                    history["seconds"].append(time.perf_counter() - t0)
                    running, n_running = 0.0, 0
        bar.close()
        module.eval()
        self.module_ = module
        self.history_ = history
        self.steps_trained_ = step
        self.genes_ = np.array([], dtype=object)  # BaseModel bookkeeping (no genes here)


def _sequences_of(data, name: str) -> list[str]:
    seqs = getattr(data, "sequences", None)
    if seqs is None:
        msg = f"{name} must be a SequenceData (with .sequences), got {type(data).__name__}"
        raise TypeError(msg)
    if len(seqs) == 0:
        msg = f"{name} holds no sequences"
        raise ValueError(msg)
    return [str(s) for s in seqs]


def _sized(size: str) -> type[ESM2Model]:
    """The model class registered as ``ESM2-<size>``: its config's ``for_profile`` gives that
    size (``make_model`` calls ``config_class.for_profile(profile, seed=...)``)."""

    def for_profile(cls, profile: str = "quick", *, seed: int = 0):
        base = ESM2Config.for_profile(profile, seed=seed, size=size)
        return cls(**dataclasses.asdict(base))

    config_class = type(f"ESM2Config{size}", (ESM2Config,), {
        "for_profile": classmethod(for_profile), "__doc__": ESM2Config.__doc__,
    })
    return type(f"ESM2Model{size}", (ESM2Model,), {
        "size": size, "name": f"ESM2-{size}", "config_class": config_class,
        "__doc__": ESM2Model.__doc__,
    })


ESM2_8M, ESM2_35M, ESM2_150M = (_sized(s) for s in ESM2_SIZES)
