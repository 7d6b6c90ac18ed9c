"""`cpu_precision: int8`: the fp32 model exported to ONNX and run by ONNX Runtime with int8 weights.

Built at load time (a worker's initialize), in a temporary folder that is gone once the session
holds the model:

1. export the fp32 model with eager attention (the explicit matmul-softmax graph, which ONNX
   Runtime's transformer optimizer fuses; SDPA's export is not fused), dynamic batch and
   sequence axes;
2. fuse with onnxruntime.transformers' BERT optimizer (Attention, EmbedLayerNormalization,
   SkipLayerNormalization, BiasGelu);
3. quantize dynamically: int8 weights per output channel for MatMul and Attention, activations
   quantized per batch at run time; the embeddings (EmbedLayerNormalization) stay fp32.

`OnnxInt8Model` looks to SentimentClassifier.predict_texts like the torch model: called with
input_ids and attention_mask, it returns an object with `.logits`. Explanations keep the fp32
torch model (int8 graphs have no backward).
"""

from __future__ import annotations

import contextlib
import ctypes
import gc
import logging
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path

import onnx
import onnxruntime as ort
import torch
from onnxruntime.quantization import QuantType, quantize_dynamic
from onnxruntime.transformers.optimizer import optimize_model

QUANTIZED_OPS = ("MatMul", "Attention")  # not EmbedLayerNormalization / Gather: embeddings stay fp32
OPSET = 17


@dataclass(frozen=True)
class OnnxOutput:
    logits: torch.Tensor


class _Logits(torch.nn.Module):
    """The classifier as a plain (input_ids, attention_mask) -> logits function, for tracing."""

    def __init__(self, model: torch.nn.Module):
        super().__init__()
        self.model = model

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return self.model(input_ids=input_ids, attention_mask=attention_mask).logits


class OnnxInt8Model:
    """An ONNX Runtime session with the torch model's call signature and its `config`."""

    def __init__(self, session, config):
        self.session, self.config = session, config

    def __call__(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> OnnxOutput:
        feed = {"input_ids": input_ids.cpu().numpy(), "attention_mask": attention_mask.cpu().numpy()}
        (logits,) = self.session.run(["logits"], feed)
        return OnnxOutput(torch.from_numpy(logits))


def export_onnx(model: torch.nn.Module, path: Path) -> None:
    """The fp32 model as ONNX with eager attention (restored afterwards); batch and sequence
    dynamic. The example batch has padding, so the attention mask is part of the traced graph."""
    example = {
        "input_ids": torch.tensor([[101, 2307, 2166, 102], [101, 2919, 102, 0]]),
        "attention_mask": torch.tensor([[1, 1, 1, 1], [1, 1, 1, 0]]),
    }
    axes = {"input_ids": {0: "batch", 1: "tokens"}, "attention_mask": {0: "batch", 1: "tokens"}, "logits": {0: "batch"}}
    attention = model.config._attn_implementation
    model.set_attn_implementation("eager")
    try:
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation and tracer notes
            torch.onnx.export(
                _Logits(model.eval()),
                (example["input_ids"], example["attention_mask"]),
                str(path),
                dynamo=False,  # the TorchScript exporter: no onnxscript needed, eager attention fuses
                input_names=["input_ids", "attention_mask"],
                output_names=["logits"],
                dynamic_axes=axes,
                opset_version=OPSET,
            )
    finally:
        model.set_attn_implementation(attention)


def quantize_int8(model: torch.nn.Module, folder: Path) -> Path:
    """Export, fuse and quantize `model` into `folder`; returns the int8 model's path."""
    exported, fused, quantized = folder / "fp32.onnx", folder / "fused.onnx", folder / "int8.onnx"
    export_onnx(model, exported)
    config = model.config
    optimized = optimize_model(
        str(exported),
        model_type="bert",
        num_heads=getattr(config, "n_heads", 0),
        hidden_size=getattr(config, "dim", 0),
        opt_level=0,  # the Python fusions only; the session applies ONNX Runtime's own at load
    )
    optimized.save_model_to_file(str(fused))
    quiet = logging.getLogger()
    level = quiet.level
    quiet.setLevel(logging.ERROR)  # the quantizer's advice to pre-process, on the root logger
    try:
        quantize_dynamic(
            fused,
            quantized,
            op_types_to_quantize=list(QUANTIZED_OPS),
            per_channel=True,
            weight_type=QuantType.QInt8,
            # The fused ops are com.microsoft ones, which ONNX shape inference cannot type.
            extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT},
        )
    finally:
        quiet.setLevel(level)
    return quantized


def load_int8(model: torch.nn.Module, threads: int) -> OnnxInt8Model:
    """`model` (fp32, on CPU) as an int8 ONNX Runtime session with `threads` intra-op threads,
    run sequentially; `model` itself is left as it was."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    with tempfile.TemporaryDirectory(prefix="sentiment-onnx-") as work:
        path = quantize_int8(model, Path(work))
        session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    _release_freed_memory()
    return OnnxInt8Model(session, model.config)


def _release_freed_memory() -> None:
    """The export, optimizer and quantizer free about 500 MB (released model) that glibc keeps
    in the worker's heap; hand it back (RSS after SentimentClassifier.load, explanations on:
    1,170 MiB without this, 707 with it; fp32 592)."""
    gc.collect()
    with contextlib.suppress(OSError, AttributeError):  # not glibc: nothing to trim this way
        ctypes.CDLL("libc.so.6").malloc_trim(0)
