"""``xaiseg``: one subcommand per stage. Parsing only; each calls its stage's API."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from xaiseg.errors import XaisegError

Handler = Callable[[argparse.Namespace], None]


def _json(text: str) -> dict:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as err:
        raise argparse.ArgumentTypeError(f"not valid JSON: {text!r} ({err})") from err
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError(f"expected a JSON object, got {text!r}")
    return value


def _window(text: str):
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        value = text
    if value is None or value == "file":
        return value
    if (
        isinstance(value, list)
        and len(value) == 2
        and all(isinstance(v, int | float) for v in value)
    ):
        return tuple(float(v) for v in value)
    raise argparse.ArgumentTypeError(f'expected null, "file" or [centre, width], got {text!r}')


def _training_settings(cls, args: argparse.Namespace):
    """A stage's settings dataclass filled from the shared training flags."""
    names = (
        "network",
        "network_options",
        "epochs",
        "learning_rate",
        "batch_size",
        "patience",
        "seed",
    )
    return cls(**{name: getattr(args, name) for name in names})


def _threads(args: argparse.Namespace) -> None:
    import torch

    torch.set_num_threads(max(1, args.threads))


def _add_training(
    p: argparse.ArgumentParser, network: str, epochs: int, lr: float, batch: int
) -> None:
    p.add_argument("--data", type=Path, required=True, help="preprocessed data folder")
    p.add_argument("--out", type=Path, required=True, help="artifact folder to write")
    p.add_argument("--network", default=network)
    p.add_argument("--network-options", type=_json, default={}, help="JSON keyword options")
    p.add_argument("--epochs", type=int, default=epochs)
    p.add_argument("--learning-rate", type=float, default=lr)
    p.add_argument("--batch-size", type=int, default=batch)
    p.add_argument("--patience", type=int, default=10)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1)


def cmd_demo(args: argparse.Namespace) -> None:
    from xaiseg.demo import DemoSpec, generate_demo

    spec = DemoSpec(
        args.n_images, args.size, args.positive_fraction, args.images_per_patient, args.seed
    )
    generate_demo(args.out, spec)


def cmd_sheet(args: argparse.Namespace) -> None:
    from xaiseg.io.layouts import write_layout_sheet

    options = {
        "negative": args.negative,
        "positive": args.positive,
        "axis": args.axis,
        "observation": args.observation,
        "uncertain": args.uncertain,
    }
    sheet = write_layout_sheet(args.layout, args.root, args.out, options)
    counts = sheet["label"].value_counts().to_dict()
    print(f"sheet: {len(sheet)} rows, {sheet['group'].nunique()} groups, labels {counts}")


def cmd_preprocess(args: argparse.Namespace) -> None:
    from xaiseg.data.preprocess import PreprocessSettings, preprocess

    settings = PreprocessSettings(
        classes=tuple(args.classes),
        image_size=args.image_size,
        channels=args.channels,
        val_fraction=args.val_fraction,
        test_fraction=args.test_fraction,
        seed=args.seed,
        shard_size=args.shard_size,
        on_bad_input=args.on_bad_input,
        mask_size_mismatch=args.mask_size_mismatch,
        dicom_window=args.dicom_window,
    )
    counts = preprocess(args.sheet, args.out, settings, threads=args.threads)
    print(
        f"preprocess: {counts['in']} in, {counts['kept']} kept, {counts['quarantined']} quarantined"
    )


def cmd_train_classifier(args: argparse.Namespace) -> None:
    from xaiseg.train.classifier import ClassifierSettings, train_classifier

    _threads(args)
    settings = _training_settings(ClassifierSettings, args)
    metrics = train_classifier(args.data, args.out, settings)
    print(f"classifier: test {json.dumps(metrics.get('test', {}))}")


def cmd_saliency(args: argparse.Namespace) -> None:
    from xaiseg.saliency.compute import compute_saliency

    _threads(args)
    compute_saliency(
        args.data,
        args.classifier,
        args.out,
        args.method,
        args.target_layer,
        args.batch_size,
        args.options,
        args.seed,
    )


def cmd_masks(args: argparse.Namespace) -> None:
    from xaiseg.masks.build import MaskSettings, build_masks

    settings = MaskSettings(
        args.rule,
        args.rule_options,
        args.smooth_sigma,
        args.min_size,
        not args.no_fill_holes,
        args.gate_threshold,
    )
    counts = build_masks(args.data, args.saliency, args.predictions, args.out, settings)
    print(f"masks: {counts}")


def cmd_train_segmenter(args: argparse.Namespace) -> None:
    from xaiseg.train.segmenter import SegmenterSettings, train_segmenter

    _threads(args)
    settings = _training_settings(SegmenterSettings, args)
    summary = train_segmenter(args.data, args.out, settings, masks_dir=args.masks)
    print(
        f"segmenter: best val Dice {summary['best_val_dice']:.3f} at epoch {summary['best_epoch']}"
    )


def cmd_evaluate(args: argparse.Namespace) -> None:
    from xaiseg.evaluate.run import evaluate
    from xaiseg.evaluate.tables import parse_evaluated

    saliency = dict(item.split("=", 1) for item in args.saliency)
    evaluate(
        args.data,
        [parse_evaluated(s) for s in args.evaluate],
        {k: Path(v) for k, v in saliency.items()},
        args.out,
        args.n_figure,
        args.seed,
        args.classifier_metrics,
    )


def build_parser() -> argparse.ArgumentParser:
    from xaiseg.masks import RULES
    from xaiseg.models.factory import CLASSIFIERS, SEGMENTERS
    from xaiseg.saliency import METHODS

    parser = argparse.ArgumentParser(prog="xaiseg", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("demo-data", help="write the synthetic demo dataset and its sheet")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--n-images", type=int, default=320)
    p.add_argument("--size", type=int, default=128)
    p.add_argument("--positive-fraction", type=float, default=0.5)
    p.add_argument("--images-per-patient", type=int, default=4)
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(handler=cmd_demo)

    p = sub.add_parser("sheet", help="write a sample sheet for a public dataset's layout")
    p.add_argument("root", type=Path, help="the dataset's folder, as downloaded")
    p.add_argument(
        "--layout", required=True, help="lgg, busi, kvasir, folders, nifti, chexpert or cbis-ddsm"
    )
    p.add_argument(
        "--axis", type=int, choices=[0, 1, 2], default=2, help="nifti: slicing axis (RAS+)"
    )
    p.add_argument("--out", type=Path, required=True, help="sheet to write (TSV)")
    p.add_argument("--observation", default="Pleural Effusion", help="chexpert: the label")
    p.add_argument("--uncertain", choices=["ones", "zeros", "ignore"], default="ones")
    p.add_argument("--negative", default="normal", help="label of slices without a finding")
    p.add_argument("--positive", default="lesion", help="label of slices with a finding")
    p.set_defaults(handler=cmd_sheet)

    p = sub.add_parser("preprocess", help="decode, resample, normalise, split, shard")
    p.add_argument("--sheet", type=Path, required=True)
    p.add_argument(
        "--out",
        type=Path,
        required=True,
        help="run folder (writes data/, sheet.tsv, quarantine.tsv)",
    )
    p.add_argument(
        "--classes", nargs="+", required=True, help="class names; the last is the finding"
    )
    p.add_argument("--image-size", type=int, required=True)
    p.add_argument("--channels", type=int, default=1)
    p.add_argument("--val-fraction", type=float, default=0.15)
    p.add_argument("--test-fraction", type=float, default=0.25)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--shard-size", type=int, default=256)
    p.add_argument("--on-bad-input", choices=["fail", "skip"], default="fail")
    p.add_argument("--mask-size-mismatch", choices=["error", "resize"], default="error")
    p.add_argument(
        "--dicom-window",
        type=_window,
        default=None,
        help='JSON: null (modality values), "file" (the file\'s VOI) or [centre, width]',
    )
    p.add_argument("--threads", type=int, default=1)
    p.set_defaults(handler=cmd_preprocess)

    p = sub.add_parser("train-classifier", help="train the image-level classifier")
    _add_training(p, "resnet18", 30, 1e-3, 32)
    p.set_defaults(handler=cmd_train_classifier)
    p.epilog = f"networks: {', '.join(sorted(CLASSIFIERS))}"

    p = sub.add_parser("saliency", help="saliency maps for every image")
    p.add_argument("--data", type=Path, required=True)
    p.add_argument("--classifier", type=Path, required=True)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--method", choices=sorted(METHODS), required=True)
    p.add_argument("--target-layer", default=None)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--options", type=_json, default={})
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1)
    p.set_defaults(handler=cmd_saliency)

    p = sub.add_parser("masks", help="pseudo-masks from saliency maps")
    p.add_argument("--data", type=Path, required=True)
    p.add_argument("--saliency", type=Path, required=True)
    p.add_argument("--predictions", type=Path, required=True, help="classifier predictions.csv")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--rule", choices=sorted(RULES), default="otsu")
    p.add_argument("--rule-options", type=_json, default={})
    p.add_argument("--smooth-sigma", type=float, default=0.0)
    p.add_argument("--min-size", type=int, default=4)
    p.add_argument("--no-fill-holes", action="store_true")
    p.add_argument(
        "--gate-threshold",
        type=lambda t: t if t == "val" else float(t),
        default=0.5,
        help='a probability, or "val" for the threshold chosen on the validation split',
    )
    p.set_defaults(handler=cmd_masks)

    p = sub.add_parser("train-segmenter", help="train a U-Net on pseudo-masks or ground truth")
    _add_training(p, "unet", 40, 2e-3, 16)
    p.add_argument(
        "--masks", type=Path, default=None, help="pseudo-mask folder; omit for ground truth"
    )
    p.set_defaults(handler=cmd_train_segmenter)
    p.epilog = f"networks: {', '.join(sorted(SEGMENTERS))}"

    p = sub.add_parser("evaluate", help="tables and figures against ground truth")
    p.add_argument("--data", type=Path, required=True)
    p.add_argument("--evaluate", nargs="+", required=True, metavar="METHOD:RULE:MODEL:FOLDER")
    p.add_argument("--saliency", nargs="*", default=[], metavar="METHOD=FOLDER")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--n-figure", type=int, default=6)
    p.add_argument(
        "--classifier-metrics", type=Path, default=None, help="metrics.json for the report"
    )
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(handler=cmd_evaluate)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        args.handler(args)
    except XaisegError as err:
        print(f"xaiseg {args.command}: error: {err}", file=sys.stderr)
        return 2
    return 0
