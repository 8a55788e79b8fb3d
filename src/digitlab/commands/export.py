"""`digitlab export MODEL`: a run's model as a self-contained ONNX file, checked against PyTorch."""

from __future__ import annotations

import argparse

from digitlab.commands.options import WEIGHTS
from digitlab.inference.onnx_model import OPSET

HELP = "write a run's model as a self-contained ONNX file, checked against PyTorch (needs 'digitlab[export]')"


def register(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("export", help=HELP, parents=[WEIGHTS])
    parser.add_argument("model", metavar="MODEL", help="a finished run directory")
    parser.add_argument("--format", default="onnx", choices=("onnx",), help="file format (default: onnx)")
    parser.add_argument("--out", metavar="FILE", help="where to write it (default: MODEL/model.onnx)")
    parser.add_argument("--opset", type=int, default=OPSET, help=f"ONNX opset to write (default: {OPSET})")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> dict:
    from pathlib import Path

    from digitlab.inference.export import export_onnx  # torch.onnx and onnx load only for this command

    result = export_onnx(Path(args.model), args.out, weights=args.weights, opset=args.opset)
    sizes = " and ".join(str(size) for size in result["batch_sizes"])
    print(
        f"exported {args.model} ({result['model']}, {result['weights']}) to {result['path']}: ONNX opset "
        f"{result['opset']}, {result['bytes'] / 1e6:.2f} MB\n"
        f"verified with onnxruntime on {result['images']} at batch sizes {sizes}: logits within "
        f"{result['max_difference']:.2g} of PyTorch's (limit {result['tolerance']:g}); {result['seconds']:.1f} s"
    )
    if result["temperature"] != 1.0 or result["reject_below"] is not None:
        threshold = result["reject_below"]
        print(
            f"calibrated: its logits are divided by the run's temperature {result['temperature']:.4g} inside the "
            f"graph" + (f"; 'not a digit' below a confidence of {threshold:.4f} (metadata)" if threshold else "")
        )
    else:
        print(f"uncalibrated (temperature 1): 'digitlab calibrate {args.model}' before exporting calibrates it")
    return result
