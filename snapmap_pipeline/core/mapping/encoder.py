"""The packaged all-MiniLM-L6-v2 run in numpy: the same BERT forward pass, mean pooling and normalising
that sentence-transformers does, without importing torch (seconds on a cold start). No Dagster imports.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

MAX_TOKENS = 256  # the model's max_seq_length (sentence_bert_config.json)


class NumpyMiniLM:
    """A BERT encoder from a sentence-transformers folder (config.json, tokenizer.json, safetensors).

    >>> NumpyMiniLM(path).encode(["hire date"]).shape   # doctest: +SKIP
    (1, 384)
    """

    def __init__(self, folder: str | Path) -> None:
        from safetensors.numpy import load_file
        from tokenizers import Tokenizer

        folder = Path(folder)
        cfg = json.loads((folder / "config.json").read_text(encoding="utf-8"))
        if cfg.get("model_type") != "bert" or cfg.get("hidden_act") != "gelu":
            raise ValueError(f"not a BERT/gelu model: {cfg.get('model_type')}")
        self.heads = int(cfg["num_attention_heads"])
        self.layers = int(cfg["num_hidden_layers"])
        self.eps = float(cfg.get("layer_norm_eps", 1e-12))
        self.w: dict[str, np.ndarray] = load_file(str(folder / "model.safetensors"))
        if "embeddings.word_embeddings.weight" not in self.w:  # some exports prefix the tensors
            self.w = {k.removeprefix("bert."): v for k, v in self.w.items()}
        # dense weights transposed once into contiguous (in, out) blocks: 2-D BLAS matmuls stay fast
        self.wt = {
            k.removesuffix(".weight"): np.ascontiguousarray(v.T)
            for k, v in self.w.items()
            if k.endswith(".weight") and v.ndim == 2 and k.startswith("encoder.")
        }
        self.tokenizer: Any = Tokenizer.from_file(str(folder / "tokenizer.json"))
        self.tokenizer.enable_truncation(MAX_TOKENS)
        self.tokenizer.enable_padding(pad_id=int(cfg.get("pad_token_id", 0)))

    def _ln(self, x: np.ndarray, name: str) -> np.ndarray:
        mu = x.mean(-1, keepdims=True)
        var = ((x - mu) ** 2).mean(-1, keepdims=True)
        return (x - mu) / np.sqrt(var + self.eps) * self.w[f"{name}.weight"] + self.w[f"{name}.bias"]

    def _dense(self, x: np.ndarray, name: str) -> np.ndarray:
        flat = np.ascontiguousarray(x.reshape(-1, x.shape[-1])) @ self.wt[name] + self.w[f"{name}.bias"]
        return flat.reshape(*x.shape[:-1], flat.shape[-1])

    def encode(self, texts: list[str], batch_size: int = 64, **_: Any) -> np.ndarray:
        """Unit vectors, one row per text (float32). Extra keywords (sentence-transformers' own) are
        accepted and ignored: the output is always normalised numpy."""
        # batches of similar length: a batch pads to its longest text, so one long field description
        # among short aliases would make every alias cost as much as it
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        ranked = [texts[i] for i in order]
        out = [self._batch(ranked[i : i + batch_size]) for i in range(0, len(ranked), batch_size)]
        if not out:
            return np.zeros((0, 384), np.float32)
        vecs = np.concatenate(out)
        result = np.empty_like(vecs)
        result[np.array(order, dtype=np.int64)] = vecs
        return result

    def _batch(self, texts: list[str]) -> np.ndarray:
        from scipy.special import erf

        enc = self.tokenizer.encode_batch(texts)
        ids = np.array([e.ids for e in enc], dtype=np.int64)
        mask = np.array([e.attention_mask for e in enc], dtype=np.float32)
        b, n = ids.shape
        w = self.w
        x = (
            w["embeddings.word_embeddings.weight"][ids]
            + w["embeddings.position_embeddings.weight"][:n][None]
            + w["embeddings.token_type_embeddings.weight"][0]
        )
        x = self._ln(x, "embeddings.LayerNorm")
        h, d = self.heads, x.shape[-1] // self.heads
        bias = ((1.0 - mask) * np.finfo(np.float32).min)[:, None, None, :]
        for i in range(self.layers):  # six layers: the network's depth, not a loop over data
            p = f"encoder.layer.{i}"
            q, k, v = (
                self._dense(x, f"{p}.attention.self.{t}").reshape(b, n, h, d).transpose(0, 2, 1, 3)
                for t in ("query", "key", "value")
            )
            att = q @ k.transpose(0, 1, 3, 2) / np.sqrt(d) + bias
            att = np.exp(att - att.max(-1, keepdims=True))
            att /= att.sum(-1, keepdims=True)
            ctx = (att @ v).transpose(0, 2, 1, 3).reshape(b, n, h * d)
            x = self._ln(
                self._dense(ctx, f"{p}.attention.output.dense") + x, f"{p}.attention.output.LayerNorm"
            )
            inter = self._dense(x, f"{p}.intermediate.dense")
            inter = 0.5 * inter * (1.0 + erf(inter / np.sqrt(2.0)))
            x = self._ln(self._dense(inter, f"{p}.output.dense") + x, f"{p}.output.LayerNorm")
        pooled = (x * mask[..., None]).sum(1) / np.maximum(mask.sum(1, keepdims=True), 1e-9)
        pooled /= np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12)
        return pooled.astype(np.float32)
