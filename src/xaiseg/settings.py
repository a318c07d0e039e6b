"""Every stage's settings: the one place where their defaults are written.

Standard library only, so the Snakefile can import it in any environment (the
workflow's own, a conda env, a cluster head node) to fill defaults and check the
whole configuration before the first job starts. A rule hands each stage its
settings as one JSON object; ``from_mapping`` turns it back into the dataclass and
names any key it does not know.
"""

from __future__ import annotations

import dataclasses
import json
import types
import typing
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from xaiseg import registry
from xaiseg.errors import XaisegError


class ConfigError(XaisegError):
    """One or more configuration problems, every one named by its config key."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("invalid configuration:\n  " + "\n  ".join(problems))
        self.problems = problems


def from_mapping(cls: type, values: Mapping[str, Any] | None, where: str, noun: str = "key") -> Any:
    """Build dataclass ``cls`` from ``values``; unknown keys are an error naming them.

    Nested dataclasses (and lists or dicts of them) are built from their own mappings,
    so a misspelt key deep in a recipe is named with its full path.
    """
    values = dict(values or {})
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - names)
    if unknown:
        known = sorted(names) or "none"
        raise ConfigError([f"{where}: unknown {noun}(s) {unknown}; known: {known}"])
    hints = typing.get_type_hints(cls)
    built = {k: _convert(hints[k], v, f"{where}.{k}") for k, v in values.items()}
    try:
        return cls(**built)
    except TypeError as err:  # a required field missing
        raise ConfigError([f"{where}: {err}"]) from err


def _convert(hint: Any, value: Any, where: str) -> Any:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType) and isinstance(value, Mapping):
        hint = next((a for a in args if dataclasses.is_dataclass(a)), hint)
    if origin in (typing.Union, types.UnionType) and isinstance(value, list):
        hint = next((a for a in args if typing.get_origin(a) in (list, tuple)), hint)
        origin, args = typing.get_origin(hint), typing.get_args(hint)
    if dataclasses.is_dataclass(hint) and isinstance(value, Mapping):
        return from_mapping(hint, value, where)
    if origin in (list, tuple) and args and dataclasses.is_dataclass(args[0]):
        items = [_convert(args[0], v, f"{where}[{i}]") for i, v in enumerate(value)]
        return tuple(items) if origin is tuple else items
    if origin is tuple and isinstance(value, list):
        if args and args[0] in (int, float):  # command-line words: "1" -> 1
            return tuple(args[0](v) if isinstance(v, str) else v for v in value)
        return tuple(value)
    if origin is dict and len(args) == 2 and dataclasses.is_dataclass(args[1]):
        return {k: _convert(args[1], v, f"{where}.{k}") for k, v in value.items()}
    return value


@dataclass(frozen=True)
class NoOptions:
    pass


class Configurable:
    """A registry entry (mask rule, refine step) whose options are the dataclass
    ``Options``: a misspelt option is an error that names it."""

    Options: type = NoOptions

    def __init__(self, **options: Any) -> None:
        self.options = from_mapping(self.Options, options, type(self).__name__)


def to_json(settings: Any) -> str:
    """The JSON a rule passes to its stage; sorted, so equal settings give equal text."""
    return json.dumps(dataclasses.asdict(settings), sort_keys=True)


def from_json(cls: type, text: str, where: str = "settings") -> Any:
    try:
        values = json.loads(text)
    except json.JSONDecodeError as err:
        raise ConfigError([f"{where}: not valid JSON ({err})"]) from err
    return from_mapping(cls, values, where)


# --- the run and its input ------------------------------------------------------------


@dataclass(frozen=True)
class RunSettings:
    run: str = "demo"
    seed: int = 0
    threads: int = 4  # per training or saliency job
    device: str = "auto"
    precision: str = "fp32"
    # "strict": artifacts and logs keep only sample_ids and hashes, never a path.
    privacy: str = "standard"
    # Images per preprocessing, saliency, pseudo-mask and evaluation job (whole shards
    # of preprocess.shard_size), each stage's groups joined into one artifact; None: one
    # job per stage, map and recipe.
    group_size: int | None = None


@dataclass(frozen=True)
class DataSettings:
    source: str = "demo"  # demo | sheet | layout
    sheet: str = ""
    layout: str = ""
    root: str = ""
    archive: str | tuple[str, ...] = ""  # one archive or several, extracted side by side
    classes: tuple[str, ...] = ("normal", "lesion")
    roots: tuple[str, ...] = ()  # folders besides the sheet's that sheet paths may use
    # Sheet labels that all mean the finding, the last class (BUSI: benign, malignant).
    finding: tuple[str, ...] = ()


# --- stages, in data-flow order -------------------------------------------------------


@dataclass(frozen=True)
class DemoSettings:
    n_images: int = 320
    size: int = 128
    positive_fraction: float = 0.5
    images_per_patient: int = 4
    spatial_dims: int = 2  # 3 writes small NIfTI volumes
    seed: int = 0


@dataclass(frozen=True)
class LayoutSettings:
    """Options of ``xaiseg sheet`` for the layouts that take any."""

    negative: str = "normal"
    positive: str = "lesion"
    # Volume layouts (nifti, brats, decathlon): the slicing axis in RAS+, or null to keep
    # whole volumes for preprocess.spatial_dims 3.
    axis: int | None = 2
    # Volume layouts: the sequences stacked as channels, in this order (empty: all).
    sequences: tuple[str, ...] = ()
    # Volume layouts: label values that are foreground (empty: any label above 0).
    foreground_labels: tuple[int, ...] = ()
    observation: str = "Pleural Effusion"
    uncertain: str = "ones"
    label_from: str = "mask"  # nuinsseg: mask | organ
    group_by: str = "organ"  # nuinsseg: organ | image


@dataclass(frozen=True)
class PreprocessSettings:
    classes: tuple[str, ...] = ("normal", "lesion")
    finding: tuple[str, ...] = ()  # data.finding
    image_size: int = 64
    spatial_dims: int = 2
    channels: int = 1
    val_fraction: float = 0.15
    test_fraction: float = 0.25
    shard_size: int = 256
    on_bad_input: str = "fail"
    mask_size_mismatch: str = "error"  # or "resize" (nearest neighbour)
    percentiles: tuple[float, float] = (0.5, 99.5)
    # Whose intensities the percentiles are of: each image's own, or all images of its
    # sheet group (a patient's volume when rows are slices: one scale per volume, so a
    # large bright lesion does not darken the rest of its slice).
    percentiles_over: str = "image"
    dicom_window: str | list[float] | None = None
    # The most pixels (voxels) x frames one file may hold, checked before decoding: a
    # small file can unpack to gigabytes.
    max_pixels: int = 100_000_000
    roots: tuple[str, ...] = ()
    privacy: str = "standard"
    seed: int = 0


@dataclass(frozen=True)
class TrainingSettings:
    network: str = "resnet18"
    network_options: dict[str, Any] = field(default_factory=dict)
    epochs: int = 30
    learning_rate: float = 1e-3
    weight_decay: float = 1e-4
    batch_size: int = 32
    # Images per forward pass when scoring the val split and writing predictions: speed
    # and memory only, never what is learnt.
    predict_batch_size: int = 64
    patience: int = 10
    # "cosine": the learning rate falls from learning_rate to 0 over the epochs (a
    # settled network at the end, where a constant rate keeps the last epochs noisy).
    lr_schedule: str = "constant"
    # At least this many optimiser steps: a small dataset's epochs are few batches, so it
    # gets more of them (epochs rise to ceil(min_steps / batches per epoch)). 0: off.
    min_steps: int = 0
    seed: int = 0
    device: str = "auto"
    precision: str = "fp32"  # "bf16": autocast on CUDA only
    # A local safetensors file to start from (models/init_weights.py); null: fresh.
    init_weights: str | None = None
    # Where training batches are augmented: "device" (the split held on the device, one
    # batched pass per batch: train/device_batches.py), "workers" (MONAI in DataLoader
    # workers), "auto": the device on CUDA, workers on the CPU. Self-supervised
    # pretraining always uses workers (two views per image).
    augment_on: str = "auto"
    # The spatial axes flipped at random in training (0: rows, 1: columns, 2: slices;
    # null: every axis) and whether quarter turns of the first two are drawn. A scan
    # that arrives in one orientation (an ultrasound's skin line on top, a slice in its
    # volume's frame) need not teach a small network every turn: [1] and false keep
    # the top on top and mirror left and right only.
    flip_axes: tuple[int, ...] | None = None
    quarter_turns: bool = True
    # torch.compile the network for training (CUDA: minutes of compiling first).
    compile: bool = False
    # The weights (and BatchNorm statistics) averaged over optimiser steps, each step
    # weighing 1 - ema_decay: the average is what val scores and what is kept. A constant
    # rate leaves the last weights noisy (BUSI's classifier: val AUC 0.86 at one epoch,
    # 0.54 six epochs later), but at 0.99 its average lagged and its maps were worse
    # (docs/busi.md). 0: off.
    ema_decay: float = 0.0
    # The weights kept: "best", the epoch of best val score (patience stops early);
    # "last", the schedule's last epoch, no early stop: for a network that may not be
    # chosen with val masks (trained on a user's k masks, it has no others).
    checkpoint: str = "best"


@dataclass(frozen=True)
class ClassifierSettings(TrainingSettings):
    # Hide-and-seek (Singh and Lee 2017): the chance that a training image has 8 to 16
    # squares of an eighth of its side covered with noise, so that the classifier must
    # find the finding everywhere it is, not only in its most telling part. 0: off.
    hide_patches: float = 0.0
    # Other classifiers trained beside this one, each these settings with some changed
    # (e.g. {network_options: {dilate_stages: 1}}): the best val AUC is the run's
    # classifier, so a choice that suits one dataset only is made per run, from labels.
    candidates: tuple[dict[str, Any], ...] = ()
    # Keep every variant, not the best: the run's classifier is their ensemble (the mean
    # probability; each map the mean of the members' maps). Candidates that differ in
    # their seed only make the maps depend less on one training's luck.
    ensemble: bool = False
    # Whole other ways to train, each trained with every candidate as these settings are
    # (e.g. {flip_axes: [1], quarter_turns: false}): the alternative whose classifier
    # (its ensemble, or its best candidate) has the best val AUC is the run's. A choice
    # that lifts one dataset and costs another is then made per run, from labels.
    alternatives: tuple[dict[str, Any], ...] = ()

    def variants(self) -> list[ClassifierSettings]:
        """Alternative by alternative (0: these settings), its settings then each of its
        candidates' (checked: a misspelt key is an error)."""
        return [v for alternative in self._alternatives() for v in alternative._members()]

    def alternative_variants(self) -> list[range]:
        """The positions in ``variants()`` of each alternative's variants."""
        n = 1 + len(self.candidates)
        return [range(a * n, (a + 1) * n) for a in range(1 + len(self.alternatives))]

    def changes(self) -> list[dict[str, Any]]:
        """What each of ``variants()`` changes in these settings."""
        return [
            {**dict(a), **dict(c)} for a in ({}, *self.alternatives) for c in ({}, *self.candidates)
        ]

    def _alternatives(self) -> list[ClassifierSettings]:
        plain = dataclasses.replace(self, alternatives=())
        return [plain] + [
            _changed(plain, a, f"classifier.alternatives[{i}]")
            for i, a in enumerate(self.alternatives)
        ]

    def _members(self) -> list[ClassifierSettings]:
        plain = dataclasses.replace(self, candidates=(), ensemble=False)  # one network each
        return [plain] + [
            _changed(plain, c, f"classifier.candidates[{i}]") for i, c in enumerate(self.candidates)
        ]


def _changed(
    settings: ClassifierSettings, changes: Mapping[str, Any], where: str
) -> ClassifierSettings:
    """``settings`` with ``changes`` made (named by ``where`` when a key is unknown)."""
    fixed = sorted(set(changes) & {"alternatives", "candidates", "ensemble"})
    if fixed:
        raise ConfigError([f"{where}: {fixed} cannot change here; set them in classifier"])
    base = {f.name: getattr(settings, f.name) for f in dataclasses.fields(settings)}
    return from_mapping(ClassifierSettings, {**base, **dict(changes)}, where)


@dataclass(frozen=True)
class PretrainSettings(TrainingSettings):
    """Self-supervised (contrastive) pretraining of the classifier's network on the
    run's images, labels unused; ``classifier.init_weights: pretrain`` starts from it."""

    # null: the classifier's network and options (the workflow fills them in).
    network: str | None = None
    network_options: dict[str, Any] | None = None
    epochs: int = 20
    patience: int = 5
    batch_size: int = 32
    temperature: float = 0.2
    projection_dim: int = 64
    # The images it learns from; val picks the epoch, test is never seen.
    splits: tuple[str, ...] = ("train",)


@dataclass(frozen=True)
class SegmenterSettings(TrainingSettings):
    network: str = "unet"
    # A resnet_unet's encoder trains at this share of the rate (a start from the
    # classifier fine-tuned with care; 0: frozen as loaded, batch-norm statistics too,
    # and no gradient computed through it). Other networks: ignored.
    encoder_lr_scale: float = 1.0
    learning_rate: float = 2e-3
    batch_size: int = 16
    predict_batch_size: int = 32
    supervised: bool = True  # the workflow also trains on ground truth (upper bound)
    # Empty every predicted mask of an image the classifier calls negative (below this
    # probability; "val": its val-chosen threshold; "val_fpr": the lowest cut under which
    # at most gate_fpr of the val images without the finding keep any foreground, 0 when
    # the segmenter alone already does). null: the segmenter alone decides.
    gate_threshold: float | str | None = None
    gate_fpr: float = 0.2
    # The val rate is read as its upper bound at this confidence (Wilson): a dozen val
    # images without the finding are too few to trust as counted (0.5: as counted).
    gate_confidence: float = 0.8
    # Trained on ground truth, only this share of the train split's masks is used: a
    # seeded draw (mask_seed), positives and negatives alike (few-masks experiments).
    mask_fraction: float = 1.0
    # Or this many train images with the finding keep their mask (the images without
    # it in the same share of theirs, at least one): a user's k annotated scans, the
    # same k on every dataset. 0: mask_fraction decides.
    mask_count: int = 0
    mask_seed: int = 0
    # With pseudo-masks (a recipe's masks passed), mask_count or mask_fraction gives the
    # drawn train images their ground truth in place of their pseudo-masks, each seen
    # this many times an epoch: a user's k masks weighed against hundreds of weak ones.
    mask_repeat: int = 1
    # Fine-tuned on ground truth from init_weights, the weights kept are the average of
    # the start's and the trained ones', the start's share s / (s + n) for s this and n
    # the train images with the finding it tuned on (WiSE-FT, Wortsman et al. 2022): a
    # few masks pull a network far from what hundreds of weak masks taught it, many
    # masks may. The start counts as s masks. 0: as trained.
    start_masks: float = 0.0
    # The val score that picks the checkpoint and stops early. "per_image": mean Dice
    # over the val images, an image without the finding scoring 1 or 0 by whether any
    # pixel fires; "pooled": one Dice over all val pixels (metrics.pooled_dice).
    val_dice: str = "per_image"


LABEL_CHOICE = "label_choice"  # finetune.pretrained: the criterion's recipe


@dataclass(frozen=True)
class FinetuneSettings:
    """DoLL ("Explanations of Classifiers Enhance Medical Image Segmentation"): the
    segmenter trained on a recipe's pseudo-masks is fine-tuned on a few ground-truth
    masks, beside the same segmenter trained from scratch on the same masks."""

    # The recipe whose segmenter is fine-tuned; "label_choice": the one the label-only
    # criterion chooses once every recipe's U-Net is trained; null: off.
    pretrained: str | None = None
    fractions: tuple[float, ...] = (0.05, 0.1, 0.25, 1.0)  # of the train split's masks
    seeds: tuple[int, ...] = (0, 1, 2)  # a fraction below 1 runs once per seed
    # Runs on this many train masks (images with the finding; segmenter.mask_count),
    # once per seed: the few-mask rows of a user who annotated k scans. No val mask
    # chooses their checkpoint (the schedule's last epoch is kept).
    counts: tuple[int, ...] = ()
    # The count runs' draws (a new draw of masks and training seed each); null: seeds.
    # Which scans a user annotates moves a count run more than any setting does
    # (docs/busi.md), so one draw is a poor estimate of what k masks give.
    count_seeds: tuple[int, ...] | None = None
    # 0: the count runs fine-tune the pretrained U-Net on their k masks. Else first a
    # U-Net from scratch on that recipe's pseudo-masks with the k masks in place of
    # theirs, each seen round(mixed_views / k) times an epoch (its checkpoint chosen on
    # the val pseudo-masks, as the recipe U-Nets'), then that one is fine-tuned on them.
    mixed_views: int = 0
    # The fine-tuned U-Nets (not scratch) keep a share of their start's weights, the
    # start counting as this many masks (segmenter.start_masks). 0: as fine-tuned.
    start_masks: float = 0.0

    def mixed_repeat(self, count: int) -> int:
        """How often each of ``count`` drawn masks is seen an epoch in the mixed U-Net."""
        return max(1, round(self.mixed_views / count))

    def runs(self) -> list[tuple[float, int]]:
        """(fraction, seed) pairs: all masks need no repeat, their draw is all of them."""
        return [(f, s) for f in self.fractions for s in (self.seeds if f < 1 else self.seeds[:1])]

    def count_runs(self) -> list[tuple[int, int]]:
        """(count, seed) pairs."""
        seeds = self.seeds if self.count_seeds is None else self.count_seeds
        return [(k, s) for k in self.counts for s in seeds]


@dataclass(frozen=True)
class CounterfactualSettings(TrainingSettings):
    """An autoencoder of the train split's images without the finding; the residual of
    a positive image against its healthy reconstruction is a saliency map."""

    network: str = "autoencoder"  # or "denoising_unet"
    learning_rate: float = 2e-3
    # Coarse noise added to every training input (the target stays clean): Gaussian
    # noise drawn on a grid of noise_resolution cells per side, upsampled. 0: none.
    noise_std: float = 0.0
    noise_resolution: int = 16
    # Which residual signals the finding; null: the channel and direction whose evidence
    # best separates the val split's labels (image labels only, never a mask).
    residual_channel: int | None = None
    residual_direction: str | None = None  # bright | dark | abs
    # The checkpoint kept: "evidence_auc", the epoch whose residual best separates the
    # val split's labels (a sharper reconstruction also copies the lesion through, so
    # the lowest healthy error is not the best map), or "l1" on healthy val images.
    select_by: str = "evidence_auc"


@dataclass(frozen=True)
class MapSettings:
    """One saliency map: a method, its layer, its typed options, and its target."""

    method: str = ""  # empty: the map's own name
    target_layer: str | None = None
    options: dict[str, Any] = field(default_factory=dict)
    target: str = "finding"  # "finding" (the last class), "predicted", or a class name
    # The model explained: classifier, counterfactual, or a trained segmenter as
    # "segmenter/<name>" (pseudo-<recipe> or supervised): Seg-Grad-CAM and kin.
    model: str = "classifier"
    # A segmenter's pixel set whose logits are explained: "predicted" (its own mask),
    # "all", "ground_truth", or one point [row, column(, slice)].
    region: str | tuple[int, ...] = "predicted"
    # Test-time mirroring, as nnU-Net's mirror_axes: the map is the mean of the maps of
    # the image mirrored along every subset of these spatial axes (0: rows, 1: columns,
    # 2: slices), each mirrored back. [1]: the image and its left-right mirror.
    mirror_axes: tuple[int, ...] = ()
    # Multi-scale maps: the mean of the maps of the image resized by each factor (each
    # map resized back, peak-scaled per image). Empty: the image at its own size.
    scales: tuple[float, ...] = ()

    @property
    def segmenter(self) -> str | None:
        """The explained segmenter's name, or None for a classifier or counterfactual."""
        kind, _, name = self.model.partition("/")
        return name if kind == "segmenter" else None


@dataclass(frozen=True)
class SaliencySettings:
    # Images per pass; null: as large as fits on CUDA (a shard, halved on running out of
    # memory), 32 on the CPU.
    batch_size: int | None = None
    maps: dict[str, MapSettings] = field(default_factory=dict)
    seed: int = 0
    device: str = "auto"
    precision: str = "fp32"

    def map(self, name: str) -> MapSettings:
        spec = self.maps[name]
        return dataclasses.replace(spec, method=spec.method or name)


@dataclass(frozen=True)
class RefineStepSettings:
    step: str
    options: dict[str, Any] = field(default_factory=dict)


DEFAULT_REFINE = (
    RefineStepSettings("fill_holes"),
    RefineStepSettings("remove_small", {"min_size": 4}),
)


@dataclass(frozen=True)
class IgnoreBand:
    """Pixels whose combined map lies in [low, high] are left out of the segmenter loss;
    below ``low`` is background, and only above ``high`` does the rule find the lesion."""

    low: float = 0.3
    high: float = 0.6


@dataclass(frozen=True)
class SelectSettings:
    """Keep the masks of the share ``keep`` of the train split's images with the finding
    whose mask stands out most in its own map (``score``: contrast or mass); the
    others, and the val images below the same cut, are left out (``masks/select.py``)."""

    score: str = "contrast"
    keep: float = 1.0


@dataclass(frozen=True)
class RecipeSettings:
    """A named pseudo-mask recipe: maps -> normalise -> combine -> rule -> refine."""

    name: str = ""
    # Map names; a nested list is a group, one term of ``combine``: the mean of its
    # maps, each normalised first ([counterfactual, [lrp, layercam]]).
    maps: tuple[str | tuple[str, ...], ...] = ()
    combine: str = "mean"  # mean | max | product | vote
    smooth_sigma: float = 0.0
    # "peak": each map divided by its maximum; "none": values kept (comparable across
    # images, for a rule calibrated on healthy images such as healthy_quantile).
    normalize: str = "peak"
    rule: str = "otsu"
    rule_options: dict[str, Any] = field(default_factory=dict)
    refine: tuple[RefineStepSettings, ...] = DEFAULT_REFINE
    ignore: IgnoreBand | None = None
    select: SelectSettings | None = None
    # This recipe's self-training rounds; None: masks.rounds, every recipe's.
    rounds: int | None = None

    def __post_init__(self) -> None:
        groups = tuple(m if isinstance(m, str) else tuple(m) for m in self.maps)
        object.__setattr__(self, "maps", groups)  # a group read from YAML is a list

    @property
    def map_groups(self) -> tuple[tuple[str, ...], ...]:
        """Each term of ``combine``: its maps (one, or a group's)."""
        return tuple((m,) if isinstance(m, str) else m for m in self.maps)

    @property
    def map_names(self) -> tuple[str, ...]:
        """Every map the recipe reads, once each, in order."""
        return tuple(dict.fromkeys(name for group in self.map_groups for name in group))


@dataclass(frozen=True)
class MaskSettings:
    # Classifier probability below which a mask is empty; "val": the classifier stage's
    # threshold chosen on the validation split.
    gate_threshold: float | str = 0.5
    recipes: tuple[RecipeSettings, ...] = ()
    # Self-training: after each recipe's segmenter, this many rounds of a segmenter
    # trained on the previous one's own predictions, gated as every recipe's masks are.
    # Round k of recipe r is the recipe "r-rk": its masks and segmenter are artifacts.
    rounds: int = 0

    def recipe(self, name: str) -> RecipeSettings:
        return next(r for r in self.recipes if r.name == name)

    def rounds_of(self, recipe: RecipeSettings) -> int:
        """How many self-training rounds follow this recipe's segmenter."""
        return self.rounds if recipe.rounds is None else recipe.rounds

    def names(self) -> list[str]:
        """Every recipe's name, each followed by its self-training rounds'."""
        return [round_name(r.name, k) for r in self.recipes for k in range(self.rounds_of(r) + 1)]


def round_name(recipe: str, k: int) -> str:
    """Self-training round ``k`` of a recipe (round 0 is the recipe itself)."""
    return f"{recipe}-r{k}" if k else recipe


@dataclass(frozen=True)
class RecipeJob:
    """What one pseudo-mask job needs: its recipe and the gate."""

    recipe: RecipeSettings = field(default_factory=RecipeSettings)
    gate_threshold: float | str = 0.5


@dataclass(frozen=True)
class FaithfulnessSettings:
    """Deletion, insertion and the randomisation sanity check of each recipe map."""

    n_images: int = 32  # a seeded draw of test images with a lesion
    steps: int = 20  # shares of pixels removed or revealed: 0, 1/steps, ..., 1
    baseline: float = 0.0  # the value a removed pixel takes
    # A method fails the sanity check when its maps keep this rank correlation (or
    # more) with the originals once every block of the model is random.
    max_spearman: float = 0.5
    seed: int = 0
    device: str = "auto"


@dataclass(frozen=True)
class EvaluateSettings:
    n_figure: int = 6
    # The few-masks setting: this many val images with masks (or each of several counts)
    # choose the recipe and, for segmenters, the cut of their probabilities and whether
    # a refinement step follows (each step in few_mask_refine tried alone). 0: off.
    few_masks: int | list[int] = 5
    few_mask_cuts: tuple[float, ...] = (0.5,)
    few_mask_refine: tuple[RefineStepSettings, ...] = ()
    # The label choice: among the U-Nets whose detection margin is within this of the
    # best, the one whose val masks agree most with the other candidates'
    # (xaiseg.evaluate.criterion). 0: the best margin alone. Margins within 0.02 were
    # no evidence for either U-Net (lgg40: lrp-otsu 0.922 against the round's 0.904 to
    # 0.930 over its seeds); the rule keeps the round under each of three seeds on
    # lgg40 and BUSI, and the demo's choice (docs/criterion.md).
    choice_tie: float = 0.02
    seed: int = 0


@dataclass(frozen=True)
class PredictSettings:
    """After the run: its classifier and one segmenter exported as a model package
    (``results/<run>/model``), then applied to new images."""

    model: str = "headline"  # a segmenter of the run, or the headline (label-only choice)
    # A sheet of images to segment (an ``image`` column; optional sample_id, group, frame).
    sheet: str = ""
    # Or the first N test images of the run's own sheet: export and predict, checked on
    # images the run scored. 0: none.
    test_images: int = 0
    jobs: int = 1  # parallel predict jobs, each a share of the sheet's groups
    batch_size: int = 32
    outputs: tuple[str, ...] = ("overlay",)  # besides the mask: probability, overlay


# --- the whole workflow ----------------------------------------------------------------

STAGE_SECTIONS = {
    "preprocess": PreprocessSettings,
    "classifier": ClassifierSettings,
    "pretrain": PretrainSettings,
    "counterfactual": CounterfactualSettings,
    "saliency": SaliencySettings,
    "masks": MaskSettings,
    "segmenter": SegmenterSettings,
    "finetune": FinetuneSettings,
    "faithfulness": FaithfulnessSettings,
    "evaluate": EvaluateSettings,
    "predict": PredictSettings,
}
# Top-level config keys copied into every stage section that has the field.
SHARED_KEYS = ("seed", "device", "precision", "privacy")
# data keys that preprocessing reads too.
DATA_KEYS = ("classes", "roots", "finding")


@dataclass(frozen=True)
class WorkflowSettings:
    run: RunSettings
    data: DataSettings
    demo: DemoSettings
    layout: LayoutSettings
    preprocess: PreprocessSettings
    classifier: ClassifierSettings
    pretrain: PretrainSettings
    counterfactual: CounterfactualSettings
    saliency: SaliencySettings
    masks: MaskSettings
    segmenter: SegmenterSettings
    finetune: FinetuneSettings
    faithfulness: FaithfulnessSettings
    evaluate: EvaluateSettings
    predict: PredictSettings


def workflow_settings(config: Mapping[str, Any]) -> WorkflowSettings:
    """Every stage's settings from a (schema-validated) config, checked across fields."""
    shared = {k: config[k] for k in SHARED_KEYS if k in config}
    data = config.get("data", {})
    sections: dict[str, Any] = {}
    problems: list[str] = []
    for name, cls in STAGE_SECTIONS.items():
        values = dict(config.get(name) or {})
        known = {f.name for f in dataclasses.fields(cls)}
        values.update({k: v for k, v in shared.items() if k in known})
        if name == "preprocess":
            values.update({k: data[k] for k in DATA_KEYS if k in data})
        sections[name] = _section(cls, values, name, problems)
    run_keys = ("run", "threads", "group_size", *SHARED_KEYS)
    run_values = {k: config[k] for k in run_keys if k in config}
    data_values = {k: v for k, v in data.items() if k not in ("demo", "layout_options")}
    demo_values = {**data.get("demo", {}), **({"seed": config["seed"]} if "seed" in config else {})}
    for key, cls, values, where in (
        ("run", RunSettings, run_values, "config"),
        ("data", DataSettings, data_values, "data"),
        ("demo", DemoSettings, demo_values, "data.demo"),
        ("layout", LayoutSettings, data.get("layout_options", {}), "data.layout_options"),
    ):
        sections[key] = _section(cls, values, where, problems)
    if any(value is None for value in sections.values()):
        raise ConfigError(problems)
    settings = WorkflowSettings(**sections)
    problems += cross_field_problems(settings)
    if problems:
        raise ConfigError(problems)
    return settings


def _section(cls: type, values: Mapping[str, Any], where: str, problems: list[str]) -> Any:
    """A section's settings, its problems added to ``problems``; unknown keys are left
    out of the section returned, so that the checks across sections still run."""
    try:
        return from_mapping(cls, values, where)
    except ConfigError as err:
        problems += err.problems
    known = {f.name for f in dataclasses.fields(cls)}
    try:
        return from_mapping(cls, {k: v for k, v in values.items() if k in known}, where)
    except ConfigError:
        return None


def cross_field_problems(settings: WorkflowSettings) -> list[str]:
    """What a schema cannot see: references between sections and sums of fields."""
    problems = []
    pre = settings.preprocess
    source = settings.data.source
    if source == "sheet" and not settings.data.sheet:
        problems.append("data.sheet: name the sample sheet (data.source is 'sheet')")
    if source == "layout" and not settings.data.layout:
        problems.append("data.layout: name the dataset layout (data.source is 'layout')")
    low, high = pre.percentiles
    if not 0 <= low < high <= 100:
        problems.append(
            f"preprocess.percentiles: [{low}, {high}] must be [low, high] with"
            " 0 <= low < high <= 100 (the intensities mapped onto 0 and onto 1)"
        )
    clash = sorted(set(pre.finding) & set(pre.classes[:-1]))
    if clash:
        problems.append(
            f"data.finding: {clash} also name a class without the finding ({list(pre.classes)})"
        )
    if pre.val_fraction + pre.test_fraction >= 1:
        problems.append(
            f"preprocess: val_fraction + test_fraction = {pre.val_fraction + pre.test_fraction}"
            " leaves nothing to train on (must be below 1)"
        )
    if settings.demo.spatial_dims != pre.spatial_dims and settings.demo.spatial_dims == 3:
        problems.append("data.demo.spatial_dims is 3 but preprocess.spatial_dims is not")
    # A layout that takes an axis reads volumes: whole, or cut into slices along it.
    if source == "layout" and registry.takes("layout", settings.data.layout, "axis"):
        whole = settings.layout.axis is None
        if whole != (pre.spatial_dims == 3):
            problems.append(
                f"data.layout_options.axis: {settings.layout.axis} with preprocess.spatial_dims"
                f" {pre.spatial_dims} (null keeps whole volumes, for spatial_dims 3; an axis"
                " slices them, for 2)"
            )
    problems += _extension_problems(settings)
    maps = settings.saliency.maps
    for name in sorted(maps):
        spec = settings.saliency.map(name)
        if (spec.method == "counterfactual") != (spec.model == "counterfactual"):
            problems.append(
                f"saliency.maps.{name}: method 'counterfactual' and model 'counterfactual' "
                f"go together (method {spec.method!r}, model {spec.model!r})"
            )
    names = settings.masks.names()
    segmenters = {f"pseudo-{n}" for n in names}
    segmenters |= {"supervised"} if settings.segmenter.supervised else set()
    for name in sorted(maps):
        spec = settings.saliency.map(name)
        if spec.segmenter is not None and spec.segmenter not in segmenters:
            problems.append(
                f"saliency.maps.{name}: model {spec.model!r} names no trained segmenter "
                f"(choose segmenter/ and one of {sorted(segmenters)})"
            )
        if spec.segmenter is None and spec.region != "predicted":
            problems.append(f"saliency.maps.{name}: region is for segmenter models only")
        if spec.mirror_axes and not isinstance(spec.region, str):
            problems.append(f"saliency.maps.{name}: a point region cannot be mirrored")
        if any(not factor > 0 for factor in spec.scales):
            problems.append(
                f"saliency.maps.{name}: scales {list(spec.scales)} must be positive factors"
            )
        if spec.scales and not isinstance(spec.region, str):
            problems.append(f"saliency.maps.{name}: a point region cannot be rescaled")
        if spec.scales and spec.model == "counterfactual":
            # Its autoencoder takes the sizes it was trained at (strided up and down).
            problems.append(f"saliency.maps.{name}: a counterfactual map cannot be rescaled")
        problems += _axes_problems(
            f"saliency.maps.{name}: mirror_axes", spec.mirror_axes, pre.spatial_dims
        )
    if not names:
        problems.append("masks.recipes: name at least one pseudo-mask recipe")
    problems += _pretrain_problems(settings)
    problems += _flip_problems(settings, pre.spatial_dims)
    try:
        settings.classifier.variants()
    except ConfigError as err:
        problems += err.problems
    finetune = settings.finetune
    if LABEL_CHOICE in names:
        problems.append(
            f"masks.recipes: {LABEL_CHOICE!r} is finetune.pretrained's word, not a name"
        )
    if finetune.pretrained not in (None, LABEL_CHOICE, *names):
        problems.append(
            f"finetune.pretrained: {finetune.pretrained!r} is not a recipe ({sorted(names)})"
            f" nor {LABEL_CHOICE!r}"
        )
    if finetune.pretrained is not None and not (finetune.fractions and finetune.seeds):
        problems.append("finetune: name at least one fraction and one seed")
    if any(not 0 < f <= 1 for f in finetune.fractions):
        problems.append(f"finetune.fractions: each in (0, 1], got {list(finetune.fractions)}")
    if any(k < 1 for k in finetune.counts):
        problems.append(f"finetune.counts: each at least 1, got {list(finetune.counts)}")
    if finetune.count_seeds is not None and not finetune.count_seeds:
        problems.append("finetune.count_seeds: name at least one seed, or null for seeds")
    if finetune.mixed_views < 0:
        problems.append(f"finetune.mixed_views: at least 0, got {finetune.mixed_views}")
    elif finetune.mixed_views and not (finetune.pretrained and finetune.counts):
        problems.append(
            "finetune.mixed_views mixes the count runs' masks into the pretrained recipe's "
            "pseudo-masks: set finetune.pretrained and finetune.counts too"
        )
    if finetune.start_masks < 0:
        problems.append(f"finetune.start_masks: at least 0, got {finetune.start_masks}")
    segmenter = settings.segmenter
    if segmenter.start_masks:
        problems.append(
            "segmenter.start_masks is set per run by finetune.start_masks: the recipe "
            "U-Nets are not fine-tuned on ground truth"
        )
    if segmenter.mask_count or segmenter.mask_fraction < 1 or segmenter.mask_repeat != 1:
        # The section is every U-Net's, the pseudo-mask ones too: a draw there would give
        # them ground truth. The finetune section sets it per run.
        problems.append(
            "segmenter: mask_count, mask_fraction and mask_repeat are set per run by the "
            "finetune section (counts, fractions); here they would mix ground truth into "
            "every pseudo-mask U-Net"
        )
    has_rounds = any(settings.masks.rounds_of(r) for r in settings.masks.recipes)
    for dup in sorted({n for n in names if names.count(n) > 1}):
        rounds = " (a self-training round's name)" if has_rounds else ""
        problems.append(f"masks.recipes: the name {dup!r} is used more than once{rounds}")
    for recipe in settings.masks.recipes:
        if not recipe.maps or not all(recipe.map_groups):
            problems.append(f"masks.recipes[{recipe.name}]: maps or one of its groups is empty")
        for method in recipe.map_names:
            if method not in maps:
                problems.append(
                    f"masks.recipes[{recipe.name}]: map {method!r} is not in saliency.maps "
                    f"({sorted(maps)})"
                )
            elif settings.saliency.map(method).segmenter is not None:
                problems.append(
                    f"masks.recipes[{recipe.name}]: map {method!r} explains a segmenter, "
                    "which is trained on pseudo-masks (a cycle)"
                )
        band = recipe.ignore
        if band is not None and not 0 <= band.low <= band.high <= 1:
            problems.append(f"masks.recipes[{recipe.name}].ignore: need 0 <= low <= high <= 1")
        select = recipe.select
        if select is not None and not 0 < select.keep <= 1:
            problems.append(f"masks.recipes[{recipe.name}].select.keep: need 0 < keep <= 1")
    return problems + _predict_problems(settings.predict, segmenters)


def _extension_problems(settings: WorkflowSettings) -> list[str]:
    """Names of extensions that no file defines (``xaiseg.registry``: the only list)."""
    named = [
        (f"saliency.maps.{n}.method", settings.saliency.map(n).method, "saliency method")
        for n in sorted(settings.saliency.maps)
    ]
    for recipe in settings.masks.recipes:
        where = f"masks.recipes[{recipe.name}]"
        named.append((f"{where}.rule", recipe.rule, "mask rule"))
        named += [(f"{where}.refine", s.step, "refinement step") for s in recipe.refine]
    named += [
        ("evaluate.few_mask_refine", s.step, "refinement step")
        for s in settings.evaluate.few_mask_refine
    ]
    if settings.data.source == "layout" and settings.data.layout:
        named.append(("data.layout", settings.data.layout, "layout"))
    return [
        f"{key}: {value!r} is not a {kind} (one of {registry.names(kind)})"
        for key, value, kind in named
        if value not in registry.names(kind)
    ]


def _predict_problems(predict: PredictSettings, segmenters: set[str]) -> list[str]:
    known = ["headline", *sorted(segmenters)]
    problems = []
    if predict.model not in known:
        problems.append(f"predict.model: {predict.model!r} is not a segmenter of the run {known}")
    if predict.sheet and predict.test_images:
        problems.append("predict: give sheet or test_images, not both")
    return problems


def _axes_problems(key: str, axes: Sequence[int], spatial_dims: int) -> list[str]:
    if any(axis >= spatial_dims for axis in axes):
        return [f"{key} {list(axes)} names an axis the {spatial_dims}D images do not have"]
    return []


def _flip_problems(settings: WorkflowSettings, spatial_dims: int) -> list[str]:
    named = [
        (section, getattr(settings, section).flip_axes)
        for section in ("classifier", "pretrain", "counterfactual", "segmenter")
    ]
    for kind in ("alternatives", "candidates"):  # the classifier's other variants
        for i, changes in enumerate(getattr(settings.classifier, kind)):
            axes = dict(changes).get("flip_axes")
            if isinstance(axes, list | tuple) and all(isinstance(a, int) for a in axes):
                named.append((f"classifier.{kind}[{i}]", axes))  # else variants() says why
    return [
        problem
        for where, axes in named
        for problem in _axes_problems(f"{where}.flip_axes:", axes or (), spatial_dims)
    ]


def _pretrain_problems(settings: WorkflowSettings) -> list[str]:
    problems = []
    for section in ("pretrain", "counterfactual", "segmenter"):
        if getattr(settings, section).init_weights == "pretrain":
            problems.append(f"{section}.init_weights: 'pretrain' starts the classifier only")
    for section in ("pretrain", "counterfactual", "classifier"):
        if getattr(settings, section).init_weights == "classifier":
            problems.append(f"{section}.init_weights: 'classifier' starts the segmenter only")
    segmenter, classifier = settings.segmenter, settings.classifier.network
    if segmenter.init_weights == "classifier" and (
        segmenter.network != "resnet_unet" or not classifier.startswith("resnet")
    ):
        problems.append(
            "segmenter.init_weights: 'classifier' needs segmenter.network resnet_unet and a"
            f" resnet classifier (not {segmenter.network!r} and {classifier!r}): the U-Net's"
            " encoder is the classifier's network"
        )
    network = settings.pretrain.network
    if settings.classifier.init_weights == "pretrain" and network not in (
        None,
        settings.classifier.network,
    ):
        problems.append(
            f"pretrain.network: {network!r} cannot start classifier.network"
            f" {settings.classifier.network!r} (null: the classifier's)"
        )
    return problems
