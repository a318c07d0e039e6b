"""``xaiseg``: one subcommand per stage. Parsing only; each calls its stage's API.

The workflow hands a stage all its settings as one JSON object (``--settings``); a
few flags per stage override single fields for hand use. Defaults live only in
``xaiseg.settings``: a flag left out leaves the dataclass default in place.
"""

from __future__ import annotations

import argparse
import atexit
import dataclasses
import json
import os
import sys
import typing
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from xaiseg import settings as S
from xaiseg.errors import XaisegError
from xaiseg.lean_imports import skip_unused_optional_imports


def _json_value(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text  # a bare word, e.g. "file" or "val"


def _json_object(text: str) -> dict:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as err:
        raise argparse.ArgumentTypeError(f"not valid JSON: {text!r} ({err})") from err
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError(f"expected a JSON object, got {text!r}")
    return value


# A flag left out; None is a value a flag may give (``--axis null``).
_UNSET = object()


def _add_settings(p: argparse.ArgumentParser, cls: type, flags: Sequence[str]) -> None:
    """``--settings JSON`` plus one override flag per named field of ``cls``."""
    p.add_argument(
        "--settings", type=_json_object, default={}, help=f"JSON object of {cls.__name__} fields"
    )
    hints = typing.get_type_hints(cls)
    defaults = {f.name: f.default for f in dataclasses.fields(cls)}
    for name in flags:
        hint, default = hints[name], defaults[name]
        option = "--" + name.replace("_", "-")
        if hint is bool:
            p.add_argument(option, type=lambda t: t.lower() in ("1", "true", "yes"), default=_UNSET)
        elif typing.get_origin(hint) is tuple:
            p.add_argument(option, nargs="+", default=_UNSET, help=f"default {list(default)}")
        elif hint in (int, float, str):
            p.add_argument(option, type=hint, default=_UNSET, help=f"default {default!r}")
        else:  # unions (0.5 or "val"), dicts, None-able values: JSON, or a bare word
            p.add_argument(option, type=_json_value, default=_UNSET, help="JSON")
    p.set_defaults(settings_class=cls, settings_flags=tuple(flags))


def _settings(args: argparse.Namespace) -> Any:
    values = dict(args.settings)
    for name in args.settings_flags:
        if getattr(args, name) is not _UNSET:
            values[name] = getattr(args, name)
    return S.from_mapping(args.settings_class, values, "--settings")


def _trainer(sub, name: str, help_text: str, cls: type, handler) -> argparse.ArgumentParser:
    """A training command: data in, an artifact folder out, settings of ``cls``."""
    p = sub.add_parser(name, help=help_text)
    p.add_argument("--data", type=Path, required=True, help="preprocessed data folder")
    p.add_argument("--out", type=Path, required=True, help="artifact folder to write")
    p.add_argument("--threads", type=int, default=1)
    _add_settings(p, cls, TRAINING_FLAGS)
    p.set_defaults(handler=handler)
    return p


def _threads(args: argparse.Namespace) -> None:
    import torch

    torch.set_num_threads(max(1, args.threads))


def _training(args: argparse.Namespace) -> bool:
    """Threads, and torchrun's process group when it started several processes; True
    in the process that reports (the first)."""
    from xaiseg.train import distributed

    # torchrun's processes on one node share the job's threads.
    args.threads = max(1, args.threads // int(os.environ.get("LOCAL_WORLD_SIZE", "1")))
    _threads(args)
    distributed.start()
    atexit.register(distributed.stop)
    return distributed.is_main()


def _named_folders(items: Sequence[str]) -> dict[str, Path]:
    pairs = {}
    for item in items:
        name, sep, folder = item.partition("=")
        if not sep:
            raise XaisegError(f"expected NAME=FOLDER, got {item!r}")
        pairs[name] = Path(folder)
    return pairs


def cmd_demo(args: argparse.Namespace) -> None:
    from xaiseg.demo import generate_demo

    generate_demo(args.out, _settings(args))


def cmd_sheet(args: argparse.Namespace) -> None:
    from xaiseg.io.layouts import write_layout_sheet

    options = dataclasses.asdict(_settings(args))
    sheet = write_layout_sheet(args.layout, args.root, args.out, options, args.extract, args.into)
    counts = sheet["label"].value_counts().to_dict()
    print(f"sheet: {len(sheet)} rows, {sheet['group'].nunique()} groups, labels {counts}")


def cmd_preprocess(args: argparse.Namespace) -> None:
    """The whole sheet; with --plan, one shard group (--group) or the groups' shards
    joined into the data artifact (--parts)."""
    if args.sheet is None:
        raise XaisegError("preprocess: give --sheet (and --plan with --group for a group)")
    if args.plan is not None and (args.group is None) == (args.parts is None):
        raise XaisegError("preprocess: --plan needs --group NUMBER SHARDS or --parts")
    if args.parts is not None and args.plan is None:
        raise XaisegError("preprocess: --parts needs the --plan they were made from")
    if args.parts is not None:
        from xaiseg.data.preprocess_join import join_preprocessed

        counts = join_preprocessed(args.plan, args.sheet, args.parts, args.out, _settings(args))
        print(f"preprocess (join): {counts}")
        return
    from xaiseg.data.preprocess import preprocess, preprocess_group

    if args.plan is not None:
        where = (args.plan, args.sheet, args.out)
        counts = preprocess_group(*where, _settings(args), args.group, args.threads)
    else:
        counts = preprocess(args.sheet, args.out, _settings(args), threads=args.threads)
    print(
        f"preprocess: {counts['in']} in, {counts['kept']} kept, {counts['quarantined']} quarantined"
    )


def cmd_preprocess_plan(args: argparse.Namespace) -> None:
    from xaiseg.data.plan import write_plan

    print(f"preprocess-plan: {write_plan(args.sheet, args.out, _settings(args))} rows to decode")


def cmd_train_classifier(args: argparse.Namespace) -> None:
    from xaiseg.train.classifier import train_classifier

    main = _training(args)
    metrics = train_classifier(
        args.data, args.out, _settings(args), candidates_trained=args.candidates_trained
    )
    if not main:
        return
    print(f"classifier: test {json.dumps(metrics.get('test', {}))}")


def cmd_pretrain(args: argparse.Namespace) -> None:
    from xaiseg.train.pretrain import pretrain

    main = _training(args)
    metrics = pretrain(args.data, args.out, _settings(args))
    if not main:
        return
    loss = metrics["val_contrastive_loss"]
    print(f"pretrain: best epoch {metrics['best_epoch']}, val contrastive loss {loss:.4f}")


def cmd_train_counterfactual(args: argparse.Namespace) -> None:
    from xaiseg.train.counterfactual import train_counterfactual

    main = _training(args)
    metrics = train_counterfactual(args.data, args.out, _settings(args))
    if not main:
        return
    print(
        f"counterfactual: epoch {metrics['best_epoch']} by {metrics['select_by']}"
        f" ({metrics['best_score']:.4f}), val L1 {metrics['val_l1']:.4f}; residual channel "
        f"{metrics['residual_channel']}, {metrics['residual_direction']}"
    )


def cmd_saliency(args: argparse.Namespace) -> None:
    from xaiseg.saliency.compute import compute_saliency

    _threads(args)
    settings = _settings(args)
    if args.method:  # hand use: one map spelt out by flags
        spec = S.MapSettings(args.method, args.target_layer, args.options, args.target)
        settings = dataclasses.replace(settings, maps={**settings.maps, args.map: spec})
    if args.map not in settings.maps:
        raise XaisegError(f"saliency map {args.map!r} is not in the settings' maps")
    result = compute_saliency(args.data, args.model, args.out, args.map, settings, args.group)
    print(f"saliency: {result}")


def cmd_masks(args: argparse.Namespace) -> None:
    from xaiseg.masks.build import build_masks, build_round_masks

    job = _settings(args)
    if args.predictions:  # a self-training round
        counts = build_round_masks(
            args.data, args.predictions, args.classifier, args.out, job, args.group
        )
        print(f"masks: {counts}")
        return
    maps = _named_folders(args.saliency)
    missing = [m for m in job.recipe.map_names if m not in maps]
    if missing:
        raise XaisegError(f"recipe {job.recipe.name!r} needs maps {missing}: pass --saliency")
    counts = build_masks(args.data, maps, args.classifier, args.out, job, args.group)
    print(f"masks: {counts}")


def cmd_join(args: argparse.Namespace) -> None:
    from xaiseg.data.join import join_artifact

    print(f"join: {join_artifact(args.data, args.parts, args.out)}")


def cmd_verify(args: argparse.Namespace) -> None:
    from xaiseg.integrity import check_tree, set_aside

    checked, findings = check_tree(args.folder)
    for finding in findings:
        print(f"corrupt: {finding.describe()}")
    if findings and args.repair:
        for folder, target in set_aside(args.folder, findings):
            print(f"set aside: {folder} -> {target} (a plain workflow run makes it again)")
    print(f"verify: {checked} artifacts, {len(findings)} corrupt file(s)")
    if findings and not args.repair:
        raise XaisegError(
            f"{len(findings)} corrupt file(s); `xaiseg verify {args.folder} --repair` sets"
            " their artifacts aside, and the workflow's next run makes them again"
        )


def cmd_export(args: argparse.Namespace) -> None:
    from xaiseg.predict import export_model

    package = export_model(args.run, args.segmenter, args.out, args.slice_axis)
    print(f"export: {package.inference.segmenter} of {args.run} -> {args.out}")


def cmd_predict(args: argparse.Namespace) -> None:
    from xaiseg.predict import predict
    from xaiseg.predict.sources import SheetRows

    _threads(args)
    rows = SheetRows(args.sheet_root, args.split, args.limit)
    table = predict(
        args.model, args.inputs, args.out, device=args.device, batch_size=args.batch_size,
        workers=args.workers, outputs=args.outputs, saliency=args.saliency,
        exclude=args.exclude, privacy=args.privacy, on_bad_input=args.on_bad_input,
        rows=rows, part=tuple(args.part) if args.part else None,
    )  # fmt: skip
    print(f"predict: {len(table)} inputs -> {args.out}/predictions.tsv")


def cmd_predict_join(args: argparse.Namespace) -> None:
    from xaiseg.predict.run import join_predictions

    table = join_predictions(args.parts, args.out)
    print(f"predict-join: {len(table)} inputs -> {args.out}/predictions.tsv")


def _add_group(p: argparse.ArgumentParser, required: bool = False) -> None:
    p.add_argument(
        "--group",
        type=int,
        nargs=2,
        default=None,
        required=required,
        metavar=("NUMBER", "SHARDS"),
        help="only shard group NUMBER of SHARDS shards each (a join gathers the groups)",
    )


def cmd_train_segmenter(args: argparse.Namespace) -> None:
    from xaiseg.train.segmenter import train_segmenter

    main = _training(args)
    summary = train_segmenter(
        args.data, args.out, _settings(args), masks_dir=args.masks, classifier_dir=args.classifier
    )
    if not main:
        return
    print(
        f"segmenter: best val Dice {summary['best_val_dice']:.3f} at epoch {summary['best_epoch']}"
    )


def cmd_choose_segmenter(args: argparse.Namespace) -> None:
    from xaiseg.evaluate.label_choice import choose_segmenter

    recipe = choose_segmenter(args.data, _named_folders(args.segmenters), args.out, args.tie)
    print(f"choose-segmenter: {recipe}'s U-Net -> {args.out}")


def cmd_choose_masks(args: argparse.Namespace) -> None:
    from xaiseg.evaluate.label_choice import choose_masks

    recipe = choose_masks(args.criterion, _named_folders(args.masks), args.out)
    print(f"choose-masks: {recipe}'s pseudo-masks -> {args.out}")


def cmd_evaluate(args: argparse.Namespace) -> None:
    from xaiseg.evaluate.run import evaluate
    from xaiseg.evaluate.tables import parse_evaluated

    evaluate(
        args.data,
        [parse_evaluated(s) for s in args.evaluate],
        _named_folders(args.saliency),
        args.out,
        _settings(args),
        args.classifier_metrics,
        _named_folders(args.faithfulness),
        args.classifier_predictions,
        args.groups,
    )


def cmd_evaluate_images(args: argparse.Namespace) -> None:
    from xaiseg.evaluate.per_image import score_group
    from xaiseg.evaluate.tables import parse_evaluated

    things = [parse_evaluated(s) for s in args.evaluate]
    counts = score_group(args.data, things, _named_folders(args.saliency), args.out, args.group)
    print(f"evaluate-images: {counts}")


def cmd_explain(args: argparse.Namespace) -> None:
    from xaiseg.evaluate.explain import explanation_figure

    settings = _settings(args)
    ids = explanation_figure(
        args.data, args.predictions, _named_folders(args.saliency), args.out,
        settings.n_figure, settings.seed,
    )  # fmt: skip
    print(f"explain: {len(ids)} images -> {args.out / 'figure.png'}")


def cmd_faithfulness(args: argparse.Namespace) -> None:
    from xaiseg.evaluate.map_checks import check_map

    _threads(args)
    saliency = S.from_json(S.SaliencySettings, args.saliency_settings, "--saliency-settings")
    if args.map not in saliency.maps:
        raise XaisegError(f"faithfulness: map {args.map!r} is not in --saliency-settings")
    summary = check_map(
        args.data, args.classifier, args.model, args.saliency, args.out, args.map,
        saliency.map(args.map), _settings(args),
    )  # fmt: skip
    print(f"faithfulness: {summary}")


TRAINING_FLAGS = ("network", "epochs", "learning_rate", "batch_size", "patience", "seed", "device")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="xaiseg", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("demo-data", help="write the synthetic demo dataset and its sheet")
    p.add_argument("--out", type=Path, required=True)
    _add_settings(p, S.DemoSettings, ("n_images", "size", "spatial_dims", "seed"))
    p.set_defaults(handler=cmd_demo)

    p = sub.add_parser("sheet", help="write a sample sheet for a public dataset's layout")
    p.add_argument("root", type=Path, help="the dataset's folder, as downloaded")
    p.add_argument("--layout", required=True, help="a layout name (see the README)")
    p.add_argument("--out", type=Path, required=True, help="sheet to write (TSV)")
    p.add_argument("--extract", type=Path, nargs="+", default=(), help="archives to unpack first")
    p.add_argument("--into", type=Path, default=None, help="where --extract unpacks them")
    _add_settings(p, S.LayoutSettings, [f.name for f in dataclasses.fields(S.LayoutSettings)])
    p.set_defaults(handler=cmd_sheet)

    flags = [f.name for f in dataclasses.fields(S.PreprocessSettings) if f.name != "percentiles"]
    p = sub.add_parser("preprocess", help="decode, resample, normalise, split, shard")
    p.add_argument("--sheet", type=Path, default=None)
    p.add_argument("--plan", type=Path, default=None, help="preprocess-plan's folder (groups)")
    p.add_argument("--parts", type=Path, nargs="+", default=None, help="groups to join, in order")
    p.add_argument("--out", type=Path, required=True, help="run folder (data/, sheet.tsv, ...)")
    p.add_argument("--threads", type=int, default=1)
    _add_settings(p, S.PreprocessSettings, flags)
    _add_group(p)
    p.set_defaults(handler=cmd_preprocess)

    p = sub.add_parser("preprocess-plan", help="check the sheet and split it, for shard groups")
    p.add_argument("--sheet", type=Path, required=True)
    p.add_argument("--out", type=Path, required=True, help="the plan's folder")
    _add_settings(p, S.PreprocessSettings, flags)
    p.set_defaults(handler=cmd_preprocess_plan)

    p = _trainer(sub, "train-classifier", "train the image-level classifier",
                 S.ClassifierSettings, cmd_train_classifier)  # fmt: skip
    p.add_argument(
        "--candidates-trained",
        action="store_true",
        help="each of classifier.candidates was trained in <out>/candidates/<k> by a job of "
        "its own (train-classifier with that variant's settings): only choose",
    )
    _trainer(sub, "pretrain", "self-supervised pretraining of the classifier network",
             S.PretrainSettings, cmd_pretrain)  # fmt: skip
    _trainer(sub, "train-counterfactual", "train the healthy-image autoencoder",
             S.CounterfactualSettings, cmd_train_counterfactual)  # fmt: skip

    p = sub.add_parser("saliency", help="a saliency map for every image, from any model")
    p.add_argument("--data", type=Path, required=True)
    p.add_argument("--model", type=Path, required=True, help="a classifier or segmenter folder")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--map", required=True, help="the map's name in the settings' maps")
    p.add_argument("--method", default=None, help="hand use: the method of --map")
    p.add_argument("--target-layer", default=None)
    p.add_argument("--options", type=_json_object, default={})
    p.add_argument("--target", default="finding", help="finding, predicted or a class name")
    p.add_argument("--threads", type=int, default=1)
    _add_settings(p, S.SaliencySettings, ("batch_size", "seed", "device"))
    _add_group(p)
    p.set_defaults(handler=cmd_saliency)

    p = sub.add_parser("masks", help="pseudo-masks of one recipe")
    p.add_argument("--data", type=Path, required=True)
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--saliency", nargs="+", metavar="MAP=FOLDER")
    source.add_argument(
        "--predictions", type=Path, help="a segmenter's predictions (a self-training round)"
    )
    p.add_argument("--classifier", type=Path, required=True, help="classifier folder")
    p.add_argument("--out", type=Path, required=True)
    _add_settings(p, S.RecipeJob, ("gate_threshold",))
    _add_group(p)
    p.set_defaults(handler=cmd_masks)

    p = sub.add_parser("join", help="one per-sample artifact from its shard groups' folders")
    p.add_argument("--data", type=Path, required=True, help="the data the groups were made from")
    p.add_argument("--parts", type=Path, nargs="+", required=True, help="group folders, in order")
    p.add_argument("--out", type=Path, required=True)
    p.set_defaults(handler=cmd_join)

    p = sub.add_parser("verify", help="check every artifact of a run against its provenance")
    p.add_argument("folder", type=Path, help="a run folder (results/<run>) or any artifact")
    p.add_argument("--repair", action="store_true", help="set corrupt artifacts aside")
    p.set_defaults(handler=cmd_verify)

    p = sub.add_parser("train-segmenter", help="train a U-Net on pseudo-masks or ground truth")
    p.add_argument("--data", type=Path, required=True)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--masks", type=Path, default=None, help="pseudo-masks; omit for ground truth")
    p.add_argument("--classifier", type=Path, default=None, help="for gate_threshold")
    p.add_argument("--threads", type=int, default=1)
    _add_settings(p, S.SegmenterSettings, TRAINING_FLAGS)
    p.set_defaults(handler=cmd_train_segmenter)

    p = sub.add_parser(
        "choose-segmenter", help="the recipe U-Net the label-only criterion chooses, copied"
    )
    p.add_argument("--data", type=Path, required=True)
    p.add_argument("--segmenters", nargs="+", required=True, metavar="RECIPE=FOLDER")
    p.add_argument("--out", type=Path, required=True)
    tie = S.EvaluateSettings.choice_tie
    p.add_argument("--tie", type=float, default=tie, help="evaluate.choice_tie")
    p.set_defaults(handler=cmd_choose_segmenter)

    p = sub.add_parser(
        "choose-masks", help="the pseudo-masks of the recipe choose-segmenter chose, copied"
    )
    p.add_argument("--criterion", type=Path, required=True, help="choose-segmenter's table")
    p.add_argument("--masks", nargs="+", required=True, metavar="RECIPE=FOLDER")
    p.add_argument("--out", type=Path, required=True)
    p.set_defaults(handler=cmd_choose_masks)

    p = sub.add_parser("evaluate", help="tables and figures against ground truth")
    p.add_argument("--data", type=Path, required=True)
    p.add_argument("--evaluate", nargs="+", required=True, metavar="RECIPE:MODEL:FOLDER")
    p.add_argument("--saliency", nargs="*", default=[], metavar="MAP=FOLDER")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--classifier-metrics", type=Path, default=None, help="for the report")
    p.add_argument("--faithfulness", nargs="*", default=[], metavar="MAP=FOLDER")
    p.add_argument("--classifier-predictions", type=Path, default=None, help="for the ROC")
    p.add_argument(
        "--groups", type=Path, nargs="*", default=None, metavar="FOLDER",
        help="evaluate-images folders of every shard group, in order: their tables, not the images",
    )  # fmt: skip
    _add_settings(p, S.EvaluateSettings, ("n_figure", "seed"))
    p.set_defaults(handler=cmd_evaluate)

    p = sub.add_parser("evaluate-images", help="per-image scores of one shard group")
    p.add_argument("--data", type=Path, required=True)
    p.add_argument("--evaluate", nargs="+", required=True, metavar="RECIPE:MODEL:FOLDER")
    p.add_argument("--saliency", nargs="*", default=[], metavar="MAP=FOLDER")
    p.add_argument("--out", type=Path, required=True)
    _add_group(p, required=True)
    p.set_defaults(handler=cmd_evaluate_images)

    p = sub.add_parser("faithfulness", help="deletion, insertion and randomisation of a map")
    p.add_argument("--data", type=Path, required=True)
    p.add_argument("--classifier", type=Path, required=True, help="scores deletion, insertion")
    p.add_argument("--model", type=Path, required=True, help="the model the map explains")
    p.add_argument("--saliency", type=Path, required=True, help="the stored map")
    p.add_argument("--map", required=True)
    p.add_argument("--saliency-settings", required=True, help="saliency settings JSON")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--threads", type=int, default=1)
    _add_settings(p, S.FaithfulnessSettings, ("n_images", "steps", "seed", "device"))
    p.set_defaults(handler=cmd_faithfulness)

    p = sub.add_parser("explain", help="a segmenter's explanations beside its predictions")
    p.add_argument("--data", type=Path, required=True)
    p.add_argument("--predictions", type=Path, required=True, help="the segmenter's predictions")
    p.add_argument("--saliency", nargs="+", required=True, metavar="MAP=FOLDER")
    p.add_argument("--out", type=Path, required=True, help="folder for figure.png")
    _add_settings(p, S.EvaluateSettings, ("n_figure", "seed"))
    p.set_defaults(handler=cmd_explain)
    p = sub.add_parser("export", help="a run's classifier and segmenter as one model package")
    p.add_argument("run", type=Path, help="the run folder (results/<run>)")
    p.add_argument("--segmenter", default="headline", help="a folder under segmenter/, or headline")
    p.add_argument("--out", type=Path, required=True, help="the package folder to write")
    p.add_argument("--slice-axis", type=int, default=2, help="RAS+ axis volumes are cut along")
    p.set_defaults(handler=cmd_export)

    p = sub.add_parser("predict", help="segment new scans with a model package")
    p.add_argument("inputs", nargs="+", help="files, folders, DICOM series folders or sheets")
    p.add_argument("--model", type=Path, required=True, help="a package from xaiseg export")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--workers", type=int, default=0, help="decoding processes (0: in line)")
    p.add_argument("--threads", type=int, default=4, help="torch threads on the CPU")
    p.add_argument(
        "--outputs", nargs="*", default=[], choices=["probability", "overlay"],
        help="besides the mask: the segmenter's probability map, a PNG overlay",
    )  # fmt: skip
    p.add_argument("--saliency", default=None, help="also a heat map of this map or method")
    p.add_argument("--exclude", nargs="*", default=[], metavar="GLOB", help="file names to skip")
    p.add_argument("--privacy", choices=["standard", "strict"], default="standard")
    p.add_argument("--on-bad-input", choices=["fail", "skip"], default="fail")
    p.add_argument("--sheet-root", type=Path, default=None, help="where sheet paths start")
    p.add_argument("--split", default="", help="only a sheet's rows of this split")
    p.add_argument("--limit", type=int, default=None, help="only a sheet's first N rows")
    p.add_argument(
        "--part", type=int, nargs=2, default=None, metavar=("NUMBER", "PARTS"),
        help="only part NUMBER (0-based) of PARTS, whole groups each (predict-join gathers)",
    )  # fmt: skip
    p.set_defaults(handler=cmd_predict)

    p = sub.add_parser("predict-join", help="one predictions.tsv of several predict parts")
    p.add_argument("parts", nargs="+", type=Path, help="the parts' output folders")
    p.add_argument("--out", type=Path, required=True)
    p.set_defaults(handler=cmd_predict_join)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    skip_unused_optional_imports()  # before any stage loads MONAI
    args = build_parser().parse_args(argv)
    try:
        args.handler(args)
    except XaisegError as err:
        print(f"xaiseg {args.command}: error: {err}", file=sys.stderr)
        return 2
    return 0
