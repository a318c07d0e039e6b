"""Settings live once: the schema, the dataclasses, the registries and the CLI agree."""

import argparse
import dataclasses
import shutil

import pytest
import yaml

from tests.conftest import ROOT
from xaiseg import registry
from xaiseg import settings as S
from xaiseg.cli import _UNSET, build_parser
from xaiseg.codehash import code_hash, import_closure
from xaiseg.io.layouts import LAYOUTS
from xaiseg.masks import COMBINE_CHOICES, REFINERS, RULES, MaskRule
from xaiseg.masks.select import SCORES as MASK_SCORES
from xaiseg.models import CLASSIFIERS, RECONSTRUCTORS, SEGMENTERS
from xaiseg.saliency import METHODS
from xaiseg.train.counterfactual import SELECTORS as COUNTERFACTUAL_SELECTORS
from xaiseg.train.loop import LR_SCHEDULES
from xaiseg.train.segmenter import VAL_DICE

SCHEMA = yaml.safe_load((ROOT / "workflow/schemas/config.schema.yaml").read_text())
CONFIGS = ROOT / "workflow/configs"
PROPS = SCHEMA["properties"]


def field_names(cls, drop=()):
    return {f.name for f in dataclasses.fields(cls)} - set(drop)


@pytest.mark.parametrize("section, cls", list(S.STAGE_SECTIONS.items()))
def test_schema_section_keys_are_the_dataclass_fields(section, cls):
    schema_keys = set(PROPS[section]["properties"])
    assert schema_keys == field_names(cls, drop=(*S.SHARED_KEYS, *S.DATA_KEYS))


def test_nested_schema_keys_are_the_dataclass_fields():
    data = PROPS["data"]["properties"]
    assert set(data) - {"demo", "layout_options"} == field_names(S.DataSettings)
    assert set(data["demo"]["properties"]) == field_names(S.DemoSettings, drop=["seed"])
    assert set(data["layout_options"]["properties"]) == field_names(S.LayoutSettings)
    # "recipes" names a file the Snakefile layers in before any settings are made.
    run_keys = set(PROPS) - {*S.STAGE_SECTIONS, "data", "recipes"}
    assert run_keys == field_names(S.RunSettings)
    maps = PROPS["saliency"]["properties"]["maps"]["additionalProperties"]["properties"]
    assert set(maps) == field_names(S.MapSettings)
    recipe = PROPS["masks"]["properties"]["recipes"]["items"]["properties"]
    assert set(recipe) == field_names(S.RecipeSettings)
    assert recipe["refine"]["items"] == {"$ref": "#/definitions/refine_step"}
    few_refine = PROPS["evaluate"]["properties"]["few_mask_refine"]["items"]
    assert few_refine == {"$ref": "#/definitions/refine_step"}
    step = SCHEMA["definitions"]["refine_step"]["properties"]
    assert set(step) == field_names(S.RefineStepSettings)


def test_schema_choices_are_the_registries():
    """Networks, schedules and selectors are fixed lists kept equal to the code's; the
    extensions (methods, rules, steps, layouts) are listed nowhere but their folders."""
    maps = PROPS["saliency"]["properties"]["maps"]["additionalProperties"]["properties"]
    recipe = PROPS["masks"]["properties"]["recipes"]["items"]["properties"]
    step = SCHEMA["definitions"]["refine_step"]["properties"]["step"]
    layout = PROPS["data"]["properties"]["layout"]
    assert not {"enum"} & ({*maps["method"], *recipe["rule"], *step, *layout})
    assert set(recipe["combine"]["enum"]) == set(COMBINE_CHOICES)
    select = recipe["select"]["oneOf"][1]["properties"]
    assert set(select) == field_names(S.SelectSettings)
    assert set(select["score"]["enum"]) == set(MASK_SCORES)
    assert set(PROPS["classifier"]["properties"]["network"]["enum"]) == set(CLASSIFIERS)
    assert set(PROPS["segmenter"]["properties"]["network"]["enum"]) == set(SEGMENTERS)
    counterfactual = PROPS["counterfactual"]["properties"]["network"]["enum"]
    assert set(counterfactual) == set(RECONSTRUCTORS)
    select_by = PROPS["counterfactual"]["properties"]["select_by"]["enum"]
    assert set(select_by) == set(COUNTERFACTUAL_SELECTORS)
    for section in ("classifier", "pretrain", "segmenter", "counterfactual"):
        assert set(PROPS[section]["properties"]["lr_schedule"]["enum"]) == set(LR_SCHEDULES)
    assert set(PROPS["segmenter"]["properties"]["val_dice"]["enum"]) == set(VAL_DICE)


def test_the_registry_finds_each_extension_by_its_file_alone():
    """What the config check reads without importing is what the stages import."""
    assert registry.names("saliency method") == sorted(METHODS)
    assert registry.names("mask rule") == sorted(RULES)
    assert registry.names("refinement step") == sorted(REFINERS)
    assert registry.names("layout") == sorted(LAYOUTS)
    assert "cbis-ddsm" in LAYOUTS and "base" not in METHODS and "recipe" not in RULES
    assert all(issubclass(rule, MaskRule) for rule in RULES.values())
    volumes = [n for n in LAYOUTS if registry.takes("layout", n, "axis")]
    assert volumes == ["brats", "decathlon", "nifti"]  # the layouts that read volumes


def test_a_new_rule_is_one_new_file(tmp_path):
    """A module defining a MaskRule in the masks folder is a rule; the stage's code hash
    counts it, and a module defining none is not one."""
    src = tmp_path / "src"
    shutil.copytree(ROOT / "src" / "xaiseg", src / "xaiseg")
    (src / "xaiseg/masks/median_cut.py").write_text(
        "from xaiseg.masks.base import MaskRule\n\n\n"
        "class MedianCut(MaskRule):\n    def __call__(self, saliency, image):\n"
        "        return saliency > 0.5\n"
    )
    (src / "xaiseg/masks/helpers.py").write_text("def half(x):\n    return x / 2\n")
    found = registry._found("mask rule", src)
    assert found["median_cut"] == ("xaiseg.masks.median_cut", "MedianCut")
    assert "helpers" not in found and set(found) - {"median_cut"} == set(RULES)
    assert "xaiseg.masks.median_cut" in import_closure("xaiseg.masks.build", src)
    assert code_hash("xaiseg.masks.build", src) != code_hash("xaiseg.masks.build")


def test_an_unknown_extension_is_named_with_the_choices():
    config = {
        "saliency": {"maps": {"g": {"method": "gradkam"}}},
        "masks": {"recipes": [{"name": "a", "maps": ["g"], "refine": [{"step": "fil"}]}]},
        "evaluate": {"few_mask_refine": [{"step": "keep_larges"}]},
    }
    with pytest.raises(S.ConfigError) as err:
        S.workflow_settings(config)
    text = str(err.value)
    assert "saliency.maps.g.method: 'gradkam' is not a saliency method (one of [" in text
    assert "masks.recipes[a].refine: 'fil' is not a refinement step" in text
    assert "evaluate.few_mask_refine: 'keep_larges' is not a refinement step" in text


def test_cli_flags_carry_no_defaults_of_their_own():
    """A flag left out must leave the dataclass default, never a second copy of it."""
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    for name, command in sub.choices.items():
        flags = command.get_default("settings_flags") or ()
        for action in command._actions:
            if action.dest in flags:
                assert action.default is _UNSET, f"{name} --{action.dest} has its own default"


@pytest.mark.parametrize(
    "config",
    [
        "config.yaml",
        *sorted(str(p.relative_to(ROOT)) for p in ROOT.glob("workflow/configs/*.yaml")),
    ],
)
def test_shipped_configs_are_valid(config):
    from snakemake.utils import validate

    values = yaml.safe_load((ROOT / config).read_text())
    if config != "config.yaml":  # configs layer over config.yaml, lists replaced
        base = yaml.safe_load((ROOT / "config.yaml").read_text())
        values = _merge(base, values)
    validate(values, str(ROOT / "workflow/schemas/config.schema.yaml"), set_default=False)
    S.workflow_settings(values)


def _merge(base, update):
    out = dict(base)
    for key, value in update.items():
        out[key] = (
            _merge(base[key], value)
            if isinstance(value, dict) and isinstance(base.get(key), dict)
            else value
        )
    return out


def _config(**changes):
    config = yaml.safe_load((ROOT / "config.yaml").read_text())
    for dotted, value in changes.items():
        node = config
        *parents, key = dotted.split("__")
        for p in parents:
            node = node.setdefault(p, {})  # config.yaml holds only what the demo sets
        node[key] = value
    return config


def test_a_recipes_group_names_known_maps_and_is_not_empty():
    recipes = [{"name": "a", "maps": ["gradcam", ["gradcam", "nope"]]}, {"name": "b", "maps": [[]]}]
    with pytest.raises(S.ConfigError) as caught:
        S.workflow_settings(_config(masks__recipes=recipes))
    assert "masks.recipes[a]: map 'nope' is not in saliency.maps" in str(caught.value)
    assert "masks.recipes[b]: maps or one of its groups is empty" in str(caught.value)
    one = [{"name": "a", "maps": [["gradcam"]]}]
    good = S.workflow_settings(_config(masks__recipes=one, finetune__pretrained="a"))
    assert good.masks.recipes[0].map_groups == (("gradcam",),)


def test_unknown_key_is_named_with_its_path():
    with pytest.raises(S.ConfigError, match=r"masks\.recipes\[0\]: unknown key\(s\) \['rulez'\]"):
        S.workflow_settings(
            _config(masks__recipes=[{"name": "a", "maps": ["gradcam"], "rulez": 1}])
        )


def test_cross_field_problems_all_named_before_any_job():
    config = _config(
        preprocess__val_fraction=0.5,
        preprocess__test_fraction=0.5,
        masks__recipes=[
            {"name": "a", "maps": ["gradcam", "nope"]},
            {"name": "a", "maps": ["gradcam"], "ignore": {"low": 0.8, "high": 0.2}},
            {"name": "b", "maps": ["gradcam"], "select": {"score": "mass", "keep": 0}},
        ],
    )
    with pytest.raises(S.ConfigError) as caught:
        S.workflow_settings(config)
    text = str(caught.value)
    assert "val_fraction + test_fraction = 1.0" in text
    assert "map 'nope' is not in saliency.maps" in text
    assert "the name 'a' is used more than once" in text
    assert "ignore: need 0 <= low <= high <= 1" in text
    assert "masks.recipes[b].select.keep: need 0 < keep <= 1" in text


def test_a_recipe_named_as_another_recipes_self_training_round_is_refused():
    config = _config(
        masks__rounds=1,
        masks__recipes=[{"name": "a", "maps": ["gradcam"]}, {"name": "a-r1", "maps": ["gradcam"]}],
    )
    with pytest.raises(S.ConfigError, match=r"'a-r1' is used more than once \(a self-training"):
        S.workflow_settings(config)


def test_whole_volumes_go_with_3d_and_slices_with_2d():
    config = _config(data__source="layout", data__layout="brats", data__root="x")
    config["data"]["layout_options"] = {"axis": None}
    with pytest.raises(S.ConfigError, match=r"axis: None with preprocess\.spatial_dims 2"):
        S.workflow_settings(config)
    config.setdefault("preprocess", {})["spatial_dims"] = 3
    assert S.workflow_settings(config).layout.axis is None


def test_self_supervised_weights_start_the_classifier_only():
    config = _config(classifier__init_weights="pretrain", segmenter__init_weights="pretrain")
    config["pretrain"] = {"network": "vgg"}
    with pytest.raises(S.ConfigError) as caught:
        S.workflow_settings(config)
    assert "segmenter.init_weights: 'pretrain' starts the classifier only" in str(caught.value)
    assert "pretrain.network: 'vgg' cannot start classifier.network" in str(caught.value)


def test_counterfactual_method_needs_the_counterfactual_model():
    config = _config(saliency__maps={"cf": {"method": "counterfactual"}, "gradcam": {}})
    with pytest.raises(S.ConfigError, match=r"saliency\.maps\.cf: method 'counterfactual'"):
        S.workflow_settings(config)


def test_settings_json_round_trip():
    settings = S.workflow_settings(_config())
    for section in ("preprocess", "classifier", "saliency", "masks", "segmenter", "evaluate"):
        value = getattr(settings, section)
        assert S.from_json(type(value), S.to_json(value)) == value


def _defaults(cls) -> dict:
    return {
        f.name: f.default if f.default is not dataclasses.MISSING else f.default_factory()
        for f in dataclasses.fields(cls)
        if f.default is not dataclasses.MISSING or f.default_factory is not dataclasses.MISSING
    }


def _plain(value):
    return list(value) if isinstance(value, tuple) else value


def restated_defaults(config: dict, base: dict | None = None) -> list[str]:
    """Keys of ``config`` whose value is the settings' default, unless ``base`` (the
    config it is layered over) sets that key to something else: then it undoes it."""
    base = base or {}
    found = []

    def check(cls, values: dict, base_values: dict, where: str) -> None:
        defaults = _defaults(cls)
        for key, value in (values or {}).items():
            if key not in defaults or isinstance(value, dict):
                continue
            undoes = key in (base_values or {}) and base_values[key] != value
            if _plain(value) == _plain(defaults[key]) and not undoes:
                found.append(f"{where}{key}")

    check(S.RunSettings, config, base, "")
    for name, cls in S.STAGE_SECTIONS.items():
        check(cls, config.get(name), base.get(name), f"{name}.")
    data, base_data = config.get("data") or {}, base.get("data") or {}
    check(S.DataSettings, data, base_data, "data.")
    check(S.DemoSettings, data.get("demo"), base_data.get("demo"), "data.demo.")
    check(S.LayoutSettings, data.get("layout_options"), {}, "data.layout_options.")
    for recipe in (config.get("masks") or {}).get("recipes") or []:
        check(S.RecipeSettings, recipe, {}, f"masks.recipes[{recipe['name']}].")
    for name, spec in ((config.get("saliency") or {}).get("maps") or {}).items():
        check(S.MapSettings, spec, {}, f"saliency.maps.{name}.")
    return found


def test_restated_defaults_are_found():
    config = {"seed": 0, "classifier": {"epochs": 30, "lr_schedule": "constant"}}
    assert restated_defaults(config) == ["seed", "classifier.epochs", "classifier.lr_schedule"]
    base = {"classifier": {"lr_schedule": "cosine"}}  # undoing the base's value is not
    assert restated_defaults(config, base) == ["seed", "classifier.epochs"]


@pytest.mark.parametrize("name", ["config.yaml", *sorted(p.name for p in CONFIGS.glob("*.yaml"))])
def test_defaults_are_written_once(name):
    """A shipped config holds what it sets on purpose: no value equal to the default in
    src/xaiseg/settings.py, unless it undoes what the config under it sets."""
    base = yaml.safe_load((ROOT / "config.yaml").read_text())
    if name == "config.yaml":
        config, base = base, {}
    else:
        config = yaml.safe_load((CONFIGS / name).read_text())
        if config.get("recipes"):
            base = _merge(base, yaml.safe_load((ROOT / config["recipes"]).read_text()))
    assert restated_defaults(config, base) == []


def test_layouts_take_their_options_from_layout_settings():
    """A layout's options have no defaults of their own: LayoutSettings' are the only."""
    import inspect

    fields = {f.name for f in dataclasses.fields(S.LayoutSettings)}
    for name, layout in LAYOUTS.items():
        for parameter in inspect.signature(layout).parameters.values():
            if parameter.name in fields:
                assert parameter.default is inspect.Parameter.empty, (name, parameter.name)


def test_stage_modules_take_their_settings():
    """No stage module defines its own settings class: each takes its dataclass."""
    sources = "\n".join(
        p.read_text() for p in (ROOT / "src/xaiseg").rglob("*.py") if p.name != "settings.py"
    )
    for cls in S.STAGE_SECTIONS.values():
        assert f"class {cls.__name__}" not in sources


def test_a_map_of_a_segmenter_names_a_trained_one_and_feeds_no_recipe():
    maps = {
        "gradcam": {},
        "seg": {"method": "gradcam", "model": "segmenter/pseudo-nope"},
        "seg_ok": {"method": "hirescam", "model": "segmenter/supervised"},
        "cls": {"region": "all"},
        "point": {"method": "gradcam", "model": "segmenter/supervised", "region": [2, 3]},
        "deep": {"method": "gradcam", "mirror_axes": [1, 2]},
        "shrunk": {"method": "gradcam", "scales": [1.0, 0]},
        "healthy": {"method": "counterfactual", "model": "counterfactual", "scales": [2.0]},
    }
    recipes = [{"name": "a", "maps": ["gradcam", "seg_ok"]}]
    config = _config(saliency__maps=maps, masks__recipes=recipes, finetune__pretrained="a")
    with pytest.raises(S.ConfigError) as caught:
        S.workflow_settings(config)
    text = str(caught.value)
    assert "saliency.maps.seg: model 'segmenter/pseudo-nope' names no trained segmenter" in text
    assert "map 'seg_ok' explains a segmenter, which is trained on pseudo-masks" in text
    assert "saliency.maps.cls: region is for segmenter models only" in text
    assert "saliency.maps.deep: mirror_axes [1, 2] names an axis the 2D images" in text
    assert "saliency.maps.shrunk: scales [1.0, 0] must be positive factors" in text
    assert "saliency.maps.healthy: a counterfactual map cannot be rescaled" in text
    assert "saliency.maps.point: a point region" not in text  # not mirrored: fine
    for key, value in (("mirror_axes", [1]), ("scales", [2.0])):
        point = maps | {"point": maps["point"] | {key: value}}
        with pytest.raises(S.ConfigError, match=r"saliency\.maps\.point: a point region cannot"):
            S.workflow_settings(_config(saliency__maps=point, masks__recipes=recipes))
    fixed = maps | {
        "seg": {"method": "lrp"},
        "cls": {"method": "gradcam"},
        "point": {"method": "gradcam", "mirror_axes": [1]},
        "deep": {"method": "gradcam", "mirror_axes": [0, 1]},
        "shrunk": {"method": "gradcam", "scales": [0.5, 1.0]},
        "healthy": {"method": "counterfactual", "model": "counterfactual"},
    }
    recipes = [{"name": "a", "maps": ["gradcam"]}]
    good = S.workflow_settings(
        _config(saliency__maps=fixed, masks__recipes=recipes, finetune__pretrained="a")
    )
    assert good.saliency.map("seg_ok").segmenter == "supervised"
    assert good.saliency.map("deep").mirror_axes == (0, 1)
    assert good.saliency.map("shrunk").scales == (0.5, 1.0)


def test_a_kept_orientation_is_read_as_a_tuple_and_names_real_axes():
    good = S.workflow_settings(_config(classifier__flip_axes=[1], classifier__quarter_turns=False))
    assert good.classifier.flip_axes == (1,) and not good.classifier.quarter_turns
    assert all(v.flip_axes == (1,) for v in good.classifier.variants())
    assert good.segmenter.flip_axes is None and good.segmenter.quarter_turns  # defaults
    with pytest.raises(S.ConfigError, match=r"segmenter\.flip_axes: \[0, 2\] names an axis"):
        S.workflow_settings(_config(segmenter__flip_axes=[0, 2]))
    with pytest.raises(
        S.ConfigError, match=r"classifier\.alternatives\[0\]\.flip_axes: \[2\] names an axis"
    ):
        S.workflow_settings(_config(classifier__alternatives=[{"flip_axes": [2]}]))


def test_finetune_names_a_recipe_and_fractions_in_range():
    config = _config(finetune__pretrained="nope", finetune__fractions=[0.0, 0.5, 1.5],
                     finetune__counts=[5, 0], segmenter__mask_count=5,
                     segmenter__mask_fraction=0.5)  # fmt: skip
    with pytest.raises(S.ConfigError) as caught:
        S.workflow_settings(config)
    assert "finetune.pretrained: 'nope' is not a recipe" in str(caught.value)
    assert "finetune.fractions: each in (0, 1]" in str(caught.value)
    assert "finetune.counts: each at least 1, got [5, 0]" in str(caught.value)
    assert "would mix ground truth into every pseudo-mask U-Net" in str(caught.value)
    with pytest.raises(S.ConfigError, match="set per run by the finetune section"):
        S.workflow_settings(_config(segmenter__mask_repeat=3))
    assert S.workflow_settings(_config(finetune__pretrained="label_choice"))
    recipes = [{"name": "label_choice", "maps": ["gradcam"]}]
    with pytest.raises(S.ConfigError, match=r"finetune\.pretrained's word"):
        S.workflow_settings(_config(masks__recipes=recipes))
    # Mixing needs counts to mix and a recipe's pseudo-masks to mix them into.
    with pytest.raises(S.ConfigError, match=r"set finetune\.pretrained and finetune\.counts"):
        S.workflow_settings(_config(finetune__pretrained="label_choice", finetune__mixed_views=250))
    with pytest.raises(S.ConfigError, match="mixed_views: at least 0, got -1"):
        S.workflow_settings(_config(finetune__mixed_views=-1))
    mixed = S.workflow_settings(
        _config(finetune__pretrained="label_choice", finetune__counts=[5, 20, 600],
                finetune__mixed_views=250)
    ).finetune  # fmt: skip
    assert [mixed.mixed_repeat(k) for k in (5, 20, 600)] == [50, 12, 1]
    with pytest.raises(S.ConfigError, match=r"finetune\.start_masks: at least 0, got -1"):
        S.workflow_settings(_config(finetune__start_masks=-1))
    with pytest.raises(S.ConfigError, match=r"set per run by finetune\.start_masks"):
        S.workflow_settings(_config(segmenter__start_masks=5))


DATASET_KEYS = {"run", "seed", "threads", "recipes", "data", "preprocess", "group_size"}


def _resolved(name):
    """A dataset config as the Snakefile merges it: config.yaml, the config, its recipe
    block, the config again (the command line's file wins)."""
    from snakemake.utils import update_config

    own = yaml.safe_load((ROOT / "workflow/configs" / name).read_text())
    config = yaml.safe_load((ROOT / "config.yaml").read_text())
    update_config(config, own)
    update_config(config, yaml.safe_load((ROOT / own["recipes"]).read_text()))
    update_config(config, own)
    return S.workflow_settings(config)


def test_real_data_configs_share_one_recipe_block():
    """lgg40 and BUSI differ only in their run, data and preprocessing."""
    lgg, busi = _resolved("lgg40.yaml"), _resolved("busi.yaml")
    for name in ("lgg40.yaml", "busi.yaml"):
        own = yaml.safe_load((ROOT / "workflow/configs" / name).read_text())
        assert set(own) <= DATASET_KEYS, name
        assert own["recipes"] == "workflow/configs/recipes.yaml"
    shared = ("classifier", "counterfactual", "saliency", "masks", "segmenter", "finetune")
    for section in shared:
        assert getattr(lgg, section) == getattr(busi, section), section
    assert busi.preprocess.finding == ("benign", "malignant")
    names = [r.name for r in lgg.masks.recipes]
    assert names == ["cf-healthy97", "lrp-otsu", "gradcam-otsu", "cf-lrp-product"]
    # One self-training round, of the product recipe only: one more U-Net.
    assert lgg.masks.names() == [*names, "cf-lrp-product-r1"]
    # A second seed both runs train, kept with the first as one ensemble; the pair again
    # with the orientation kept, the pair of higher val AUC kept.
    variants = lgg.classifier.variants()
    assert lgg.classifier.ensemble and [v.seed for v in variants] == [0, 1, 0, 1]
    assert all(v.network_options == variants[0].network_options for v in variants)
    orientation = [(v.flip_axes, v.quarter_turns) for v in variants]
    assert orientation == [(None, True)] * 2 + [((1,), False)] * 2
    assert lgg.segmenter.gate_threshold == "val_fpr"


def test_the_classifiers_weights_start_a_resnet_unet_only():
    config = _config(classifier__init_weights="classifier", segmenter__init_weights="classifier")
    with pytest.raises(S.ConfigError) as caught:
        S.workflow_settings(config)
    assert "classifier.init_weights: 'classifier' starts the segmenter only" in str(caught.value)
    assert "'classifier' needs segmenter.network resnet_unet" in str(caught.value)
    config = _config(segmenter__init_weights="classifier", segmenter__network="resnet_unet")
    assert S.workflow_settings(config).segmenter.init_weights == "classifier"
