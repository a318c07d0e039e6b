"""The run plan: every job of a run from its settings, written out once per change, and
the end-of-run headline read back from a summary."""

from __future__ import annotations

import json

from xaiseg.evaluate.headline import headline_lines, headline_recipe
from xaiseg.run_plan import group_count, read_plan, run_plan
from xaiseg.settings import workflow_settings

CONFIG = {
    "run": "r",
    "group_size": 1024,
    "saliency": {
        "maps": {
            "gradcam": {"target_layer": "layer3"},
            "lrp": {},
            "seg": {"method": "gradcam", "model": "segmenter/supervised"},
        }
    },
    "masks": {
        "recipes": [
            {"name": "a", "maps": ["gradcam"]},
            {"name": "b", "maps": ["lrp", "gradcam"], "combine": "product"},
        ]
    },
    "segmenter": {"gate_threshold": "val"},
    "classifier": {"init_weights": "pretrain"},
    "finetune": {"pretrained": "b", "fractions": [0.5, 1.0], "seeds": [3, 4]},
    "predict": {"test_images": 2},
}


def plan(**changes):
    return run_plan(workflow_settings({**CONFIG, **changes}))


def test_every_segmenter_and_what_it_reads():
    jobs = plan().segmenters
    # 2 recipes, the supervised bound, and per arm: 0.5 twice (two seeds), 1.0 once.
    assert list(jobs) == [
        "pseudo-a", "pseudo-b", "supervised",
        "finetune-0.5-s3", "finetune-0.5-s4", "finetune-1-s3",
        "scratch-0.5-s3", "scratch-0.5-s4", "scratch-1-s3",
    ]  # fmt: skip
    assert jobs["pseudo-b"].inputs["masks"] == ["results/r/masks/b"]
    assert "masks" not in jobs["supervised"].inputs
    gate = ["results/r/classifier/predictions.csv", "results/r/classifier/metrics.json"]
    assert all(job.inputs["gate"] == gate for job in jobs.values())
    pretrained = ["results/r/segmenter/pseudo-b/model.safetensors"]
    assert jobs["finetune-0.5-s4"].inputs["init"] == pretrained
    assert jobs["scratch-0.5-s4"].inputs["init"] == []
    settings = json.loads(jobs["finetune-0.5-s4"].settings)
    assert (settings["mask_fraction"], settings["mask_seed"], settings["seed"]) == (0.5, 4, 4)
    assert settings["init_weights"] == pretrained[0] and settings["supervised"]
    assert json.loads(jobs["scratch-1-s3"].settings)["init_weights"] is None


def test_a_share_of_the_masks_trains_the_epochs_all_of_them_would():
    # 1450 steps: 50 epochs of a split in 29 batches; a quarter of it (8 batches) takes
    # ceil(362.5) = 363 steps, 46 epochs, not 182; every mask keeps all 1450.
    fractions = {"pretrained": "b", "fractions": [0.25, 1.0], "seeds": [0]}
    jobs = plan(segmenter={"min_steps": 1450}, finetune=fractions).segmenters
    steps = {name: json.loads(job.settings)["min_steps"] for name, job in jobs.items()}
    assert steps["pseudo-a"] == steps["supervised"] == steps["finetune-1-s0"] == 1450
    assert steps["finetune-0.25-s0"] == steps["scratch-0.25-s0"] == 363
    assert jobs["scratch-1-s0"].folder == jobs["supervised"].folder  # still its twin


def test_runs_on_a_count_of_masks_keep_their_last_epoch():
    counts = {"pretrained": "b", "fractions": [0.5], "seeds": [0, 2], "counts": [5]}
    jobs = plan(segmenter={"min_steps": 1450}, finetune=counts).segmenters
    names = [n for n in jobs if "-k" in n]
    assert names == ["finetune-k5-s0", "finetune-k5-s2", "scratch-k5-s0", "scratch-k5-s2"]
    settings = json.loads(jobs["finetune-k5-s2"].settings)
    assert (settings["mask_count"], settings["mask_fraction"], settings["mask_seed"]) == (5, 1, 2)
    assert (settings["checkpoint"], settings["min_steps"]) == ("last", 0)
    assert json.loads(jobs["pseudo-a"].settings)["checkpoint"] == "best"
    assert jobs["finetune-k5-s2"].inputs["init"] == [
        "results/r/segmenter/pseudo-b/model.safetensors"
    ]
    folder = "results/r/segmenter/scratch-k5-s0"
    assert jobs["scratch-k5-s0"].evaluated == f"ground_truth:scratch/k5/0:{folder}/predictions"


def test_count_runs_draw_their_own_seeds_and_get_their_table():
    counts = {"pretrained": "b", "fractions": [0.5], "seeds": [0], "counts": [5, 20]}
    p = plan(finetune={**counts, "count_seeds": [1, 2]})
    names = sorted(n for n in p.segmenters if "-k" in n)
    assert names == [f"{arm}-k{k}-s{s}" for arm in ("finetune", "scratch")
                     for k in (20, 5) for s in (1, 2)]  # fmt: skip
    assert [n for n in p.segmenters if n.endswith("-0.5-s0")] == [
        "finetune-0.5-s0",
        "scratch-0.5-s0",
    ]
    assert p.evaluate_tables["count_table"] == "results/r/eval/dice_vs_count.csv"
    # null: the shares' seeds; no count runs, no count table
    assert "finetune-k5-s0" in plan(finetune=counts).segmenters
    assert "count_table" not in plan(finetune={**counts, "counts": []}).evaluate_tables


def test_the_fine_tuned_runs_alone_weigh_their_start():
    counts = {"pretrained": "b", "fractions": [0.5], "seeds": [0], "counts": [5]}
    jobs = plan(finetune={**counts, "start_masks": 5}).segmenters
    priors = {name: json.loads(job.settings)["start_masks"] for name, job in jobs.items()}
    assert priors == {
        "pseudo-a": 0.0, "pseudo-b": 0.0, "supervised": 0.0,
        "finetune-0.5-s0": 5, "finetune-k5-s0": 5,
        "scratch-0.5-s0": 0.0, "scratch-k5-s0": 0.0,
    }  # fmt: skip
    # Scratch started from the section's own init_weights still keeps all it learnt.
    weighed = {**counts, "start_masks": 5}
    started = plan(segmenter={"init_weights": "w.safetensors"}, finetune=weighed)
    assert json.loads(started.segmenters["scratch-k5-s0"].settings)["start_masks"] == 0.0


def test_mixed_views_start_each_count_run_from_a_u_net_with_its_masks_mixed_in():
    # 250 views: k 5 seen 50 times an epoch, k 20 round(12.5) = 12 times.
    counts = {
        "pretrained": "label_choice", "fractions": [0.5], "seeds": [1],
        "counts": [5, 20], "mixed_views": 250,
    }  # fmt: skip
    p = plan(segmenter={"min_steps": 1450}, finetune=counts)
    jobs = p.segmenters
    assert [n for n in jobs if n.startswith("mixed")] == ["mixed-k5-s1", "mixed-k20-s1"]
    mixed = json.loads(jobs["mixed-k20-s1"].settings)
    assert (mixed["mask_count"], mixed["mask_repeat"], mixed["mask_seed"], mixed["seed"]) == (
        20, 12, 1, 1,
    )  # fmt: skip
    # Trained and chosen as the recipe U-Nets are: best val epoch, their steps (however
    # long the repeats make an epoch: min_steps sets the epochs), no start.
    assert (mixed["checkpoint"], mixed["min_steps"], mixed["init_weights"]) == ("best", 1450, None)
    assert mixed["epochs"] == 1 and json.loads(jobs["pseudo-a"].settings)["epochs"] == 30
    steps_free = plan(finetune=counts).segmenters["mixed-k5-s1"].settings
    assert json.loads(steps_free)["epochs"] == 30  # no min_steps: the epochs as set
    assert json.loads(jobs["mixed-k5-s1"].settings)["mask_repeat"] == 50
    assert jobs["mixed-k5-s1"].inputs["masks"] == ["results/r/label_choice/masks"]
    start = "results/r/segmenter/mixed-k5-s1/model.safetensors"
    assert jobs["finetune-k5-s1"].inputs["init"] == [start]
    assert json.loads(jobs["finetune-k5-s1"].settings)["init_weights"] == start
    # The share runs and scratch keep their starts; the mixed U-Nets are not scored.
    assert jobs["finetune-0.5-s1"].inputs["init"] == ["results/r/label_choice/model.safetensors"]
    assert jobs["scratch-k5-s1"].inputs["init"] == []
    assert not any("mixed" in row for row in p.evaluated + p.scored["segmenters"])
    assert p.label_choice_masks == {"a": "results/r/masks/a", "b": "results/r/masks/b"}
    named = plan(finetune={**counts, "pretrained": "b"}).segmenters
    assert named["mixed-k5-s1"].inputs["masks"] == ["results/r/masks/b"]
    assert "mixed-k5-s1" not in plan(finetune={**counts, "mixed_views": 0}).segmenters


def test_scratch_on_every_mask_with_the_supervised_seed_is_the_supervised_u_net():
    jobs = plan(finetune={"pretrained": "b", "fractions": [0.5, 1.0], "seeds": [0]}).segmenters
    supervised = "results/r/segmenter/supervised"
    assert jobs["scratch-1-s0"].folder == supervised  # the same settings: not trained twice
    assert jobs["scratch-1-s0"].evaluated == f"ground_truth:scratch/1/0:{supervised}/predictions"
    assert jobs["scratch-0.5-s0"].folder == "results/r/segmenter/scratch-0.5-s0"  # other masks
    assert jobs["finetune-1-s0"].folder == "results/r/segmenter/finetune-1-s0"  # other start


def test_a_label_chosen_start_waits_for_every_recipe_u_net():
    p = plan(finetune={"pretrained": "label_choice", "fractions": [0.5], "seeds": [0]})
    start = "results/r/label_choice/model.safetensors"
    assert p.segmenters["finetune-0.5-s0"].inputs["init"] == [start]
    assert json.loads(p.segmenters["finetune-0.5-s0"].settings)["init_weights"] == start
    assert p.segmenters["finetune-0.5-s0"].evaluated.startswith("label_choice:finetune/0.5/0:")
    assert p.label_choice == {
        "a": "results/r/segmenter/pseudo-a",
        "b": "results/r/segmenter/pseudo-b",
    }
    folders = ["results/r/segmenter/pseudo-a", "results/r/segmenter/pseudo-b"]
    reads = [f"{f}/{name}" for f in folders for name in ("model.safetensors", "predictions")]
    assert p.label_choice_files == reads
    assert p.label_choice_args == "a=results/r/segmenter/pseudo-a b=results/r/segmenter/pseudo-b"
    assert plan().label_choice == {}  # a named recipe: nothing to choose


def test_the_evaluated_rows_pair_each_recipe_with_its_segmenter():
    rows = plan().evaluated
    assert rows[:4] == [
        "a:pseudo_mask:results/r/masks/a",
        "a:segmenter:results/r/segmenter/pseudo-a/predictions",
        "b:pseudo_mask:results/r/masks/b",
        "b:segmenter:results/r/segmenter/pseudo-b/predictions",
    ]
    assert rows[4] == "ground_truth:supervised:results/r/segmenter/supervised/predictions"
    assert "b:finetune/0.5/3:results/r/segmenter/finetune-0.5-s3/predictions" in rows
    assert "ground_truth:scratch/1/3:results/r/segmenter/scratch-1-s3/predictions" in rows
    assert len(rows) == 4 + 1 + 6


def test_derived_settings_and_inputs():
    p = plan()
    assert p.shards_per_group == 4  # 1,024 images in shards of 256
    assert p.models["classifier"].inputs["init"] == ["results/r/pretrain/model.safetensors"]
    pretrain = json.loads(p.models["pretrain"].settings)
    assert pretrain["network"] == "resnet18"  # the classifier's, where pretrain names none
    # A map's job sees its own settings only, so another map's edit leaves it alone.
    assert list(json.loads(p.maps["lrp"].settings)["maps"]) == ["lrp"]
    assert p.maps["seg"].inputs["model"] == ["results/r/segmenter/supervised/model.safetensors"]
    assert p.recipes["b"].inputs["saliency"] == [
        "results/r/saliency/lrp",
        "results/r/saliency/gradcam",
    ]
    assert p.recipe_maps == ["gradcam", "lrp"] and p.explained == {"supervised": ["seg"]}
    # A group's maps are each an input, once.
    grouped = {"name": "c", "maps": ["lrp", ["gradcam", "lrp"]], "combine": "product"}
    recipes = plan(masks={"recipes": [*CONFIG["masks"]["recipes"], grouped]}).recipes
    saliency = ["results/r/saliency/lrp", "results/r/saliency/gradcam"]
    assert recipes["c"].inputs["saliency"] == saliency
    assert json.loads(recipes["c"].settings)["recipe"]["maps"] == ["lrp", ["gradcam", "lrp"]]
    assert p.exportable == ["pseudo-a", "pseudo-b"]
    assert p.predict == "results/r/sheet.tsv"
    rows = "--split test --limit 2 --sheet-root results/r/demo_data"
    options = "--batch-size 32 --outputs overlay --privacy standard --device auto"
    assert p.predict_args == f"{rows} {options}"
    assert p.export_args == "--segmenter headline --slice-axis 2"
    assert p.few_masks and "results/r/eval/explain/supervised/figure.png" in p.final_outputs
    assert group_count(7, 3) == 3 and group_count(6, 3) == 2


def test_no_few_masks_and_no_supervised():
    maps = {"gradcam": {}, "lrp": {}}
    p = plan(finetune={}, segmenter={"supervised": False}, saliency={"maps": maps})
    assert list(p.segmenters) == ["pseudo-a", "pseudo-b"] and not p.few_masks
    assert p.segmenters["pseudo-a"].inputs["gate"] == []


def test_plan_json_is_rewritten_only_when_the_plan_changes(tmp_path):
    path = tmp_path / "r" / "plan.json"
    plan().write(path)
    written = path.stat().st_mtime_ns
    plan().write(path)
    assert path.stat().st_mtime_ns == written
    assert read_plan(tmp_path / "r")["segmenters"]["pseudo-a"]["kind"] == "pseudo"
    plan(masks={"recipes": [{"name": "c", "maps": ["lrp"]}]}, finetune={}).write(path)
    assert list(read_plan(tmp_path / "r")["recipes"]) == ["c"]
    assert read_plan(tmp_path / "nowhere") == {}


def test_the_headline_is_the_label_only_choice_and_else_the_best_val(tmp_path):
    header = "recipe,model,setting,split,dice,dice_ci_low,dice_ci_high,label_choice"
    rows = [
        "a,segmenter,no masks,val,0.4,,,True",
        "b,segmenter,no masks,val,0.6,,,False",
        "a,segmenter,no masks,test,0.9,0.8,0.95,True",
        "b,segmenter,no masks,test,0.5,0.4,0.6,False",
        "b,pseudo_mask,no masks,val,0.99,,,False",  # a pseudo-mask row never heads
        "ground_truth,supervised,all masks,test,0.7,0.6,0.8,False",
    ]
    (tmp_path / "summary.csv").write_text("\n".join([header, *rows]) + "\n")
    lines = headline_lines(tmp_path)
    assert lines[0].startswith("headline (no masks, chosen from labels): a segmenter, test")
    assert "test Dice 0.900 (95% CI 0.800 to 0.950" in lines[0]
    assert lines[1].startswith("best val Dice (reads the val masks): b segmenter, test Dice 0.500")
    assert lines[2] == "supervised (all masks): test Dice 0.700"
    assert headline_recipe([]) is None and headline_lines(tmp_path / "none") == []
    # No label-only choice (no val image without the finding): the best val Dice heads.
    unchosen = [r.replace("True", "False") for r in rows]
    (tmp_path / "summary.csv").write_text("\n".join([header, *unchosen]) + "\n")
    lines = headline_lines(tmp_path)
    assert lines[0].startswith("headline (no masks, best val Dice): b segmenter, test Dice 0.500")
    assert lines[1].startswith("supervised")


def test_shard_group_folders():
    grouped = plan()  # 4 shards to a group
    assert grouped.job_folder("saliency", "{map}") == "results/r/groups/saliency/{map}/{group}"
    assert grouped.group_folders("masks", "a", 9) == [
        f"results/r/groups/masks/a/{g}" for g in range(3)
    ]
    single = plan(group_size=None)
    assert single.job_folder("masks", "a") == "results/r/masks/a"
    assert single.group_folders("masks", "a", 9) == ["results/r/masks/a"]


def test_self_training_rounds_chain_each_recipes_segmenters():
    """Round k of recipe b reads round k-1's segmenter's predictions; each round is a
    recipe and a segmenter of its own, scored and exportable like the recipe."""
    masks = {**CONFIG["masks"], "rounds": 2}
    p = plan(masks=masks, finetune={"pretrained": None})
    assert list(p.recipes) == ["a", "a-r1", "a-r2", "b", "b-r1", "b-r2"]
    assert p.recipes["b"].inputs == {
        "saliency": ["results/r/saliency/lrp", "results/r/saliency/gradcam"]
    }
    assert p.recipes["b-r1"].inputs == {"segmenter": ["results/r/segmenter/pseudo-b/predictions"]}
    assert p.recipes["b-r2"].inputs == {
        "segmenter": ["results/r/segmenter/pseudo-b-r1/predictions"]
    }
    assert json.loads(p.recipes["b-r2"].settings)["recipe"]["maps"] == []
    assert p.segmenters["pseudo-b-r2"].inputs["masks"] == ["results/r/masks/b-r2"]
    assert "b-r1:pseudo_mask:results/r/masks/b-r1" in p.evaluated
    assert "b-r1:segmenter:results/r/segmenter/pseudo-b-r1/predictions" in p.evaluated
    assert {"pseudo-a-r2", "pseudo-b-r1"} <= set(p.exportable)
    # Rounds never change what a recipe's own jobs read or are told.
    plain = plan(finetune={"pretrained": None})
    assert p.recipes["b"] == plain.recipes["b"]
    assert p.segmenters["pseudo-b"] == plain.segmenters["pseudo-b"]


def test_a_recipes_own_rounds_replace_every_recipes():
    """A recipe's ``rounds`` is its own count (0 included); the others keep
    masks.rounds. Its own masks job is told nothing of them."""
    a, b = CONFIG["masks"]["recipes"]
    masks = {"recipes": [{**a, "rounds": 0}, b], "rounds": 2}
    p = plan(masks=masks, finetune={"pretrained": None})
    assert list(p.recipes) == ["a", "b", "b-r1", "b-r2"]
    assert set(p.segmenters) == {"pseudo-a", "pseudo-b", "pseudo-b-r1", "pseudo-b-r2", "supervised"}
    one = plan(masks={"recipes": [a, {**b, "rounds": 1}]}, finetune={"pretrained": None})
    assert list(one.recipes) == ["a", "b", "b-r1"]
    assert one.recipes["b-r1"].inputs == {"segmenter": ["results/r/segmenter/pseudo-b/predictions"]}
    plain = plan(finetune={"pretrained": None})
    assert one.recipes["b"] == plain.recipes["b"]
    # The label-only choice weighs the round's U-Net beside the recipes'.
    chosen = plan(
        masks={"recipes": [a, {**b, "rounds": 1}]}, finetune={"pretrained": "label_choice"}
    )
    assert "b-r1" in chosen.label_choice and len(chosen.label_choice) == 3


def test_the_command_arguments_each_rule_reads_from_the_plan():
    recipes = [{"name": "a", "maps": ["gradcam", "lrp"]}]
    p = plan(masks={"recipes": recipes, "rounds": 1}, finetune={})
    assert p.mask_sources("a") == (
        "--saliency gradcam=results/r/saliency/gradcam lrp=results/r/saliency/lrp"
    )
    # A self-training round reads the previous round's segmenter.
    assert p.mask_sources("a-r1") == ("--predictions results/r/segmenter/pseudo-a/predictions")
    assert p.segmenter_sources("pseudo-a") == (
        "--masks results/r/masks/a --classifier results/r/classifier"
    )
    assert p.segmenter_sources("supervised") == "--classifier results/r/classifier"
    ungated = plan(segmenter={}, finetune={})
    assert ungated.segmenter_sources("supervised") == ""
    assert p.model_outputs("classifier")["predictions"] == "results/r/classifier/predictions.csv"
    assert "predictions" not in p.model_outputs("counterfactual")
    assert list(p.evaluate_tables) == ["per_image", "summary", "markdown", "report"]
    assert plan().evaluate_tables["few_table"] == "results/r/eval/dice_vs_fraction.csv"
    data = {"source": "layout", "layout": "lgg", "root": "kaggle 3m", "archive": ["a.tar"]}
    assert plan(data=data).sheet_args == (
        "'results/r/raw/kaggle 3m' --layout lgg --extract a.tar --into results/r/raw"
    )


def test_group_folders_are_counted_from_the_index_and_the_split_sheet(tmp_path):
    p = plan()  # 4 shards of 256 to a group
    (tmp_path / "index.json").write_text(json.dumps({"shards": ["s"] * 9}))
    assert p.artifact_groups("masks", "a", tmp_path) == [
        f"results/r/groups/masks/a/{g}" for g in range(3)
    ]
    (tmp_path / "plan.json").write_text(json.dumps({"rows": 1025}))  # 5 shards: 2 groups
    assert p.preprocess_groups(tmp_path) == [f"results/r/groups/data/shards/{g}" for g in (0, 1)]


def test_classifier_candidates_are_jobs_of_their_own_and_the_classifier_chooses():
    candidates = [{"seed": 5}, {"network_options": {"dilate_stages": 1}}]
    jobs = plan(classifier={"init_weights": "pretrain", "candidates": candidates})
    folders = [job.folder for job in jobs.classifier_candidates]
    assert folders == [f"results/r/classifier/candidates/{k}" for k in range(3)]
    weights = ["results/r/pretrain/model.safetensors"]
    assert all(job.inputs["init"] == weights for job in jobs.classifier_candidates)
    seeds = [json.loads(job.settings)["seed"] for job in jobs.classifier_candidates]
    assert seeds == [0, 5, 0]
    third = json.loads(jobs.classifier_candidates[2].settings)
    assert third["network_options"] == {"dilate_stages": 1} and third["candidates"] == []
    assert third["init_weights"] == weights[0]
    # The classifier's job reads every candidate's four files and only chooses.
    read = jobs.models["classifier"].inputs["candidates"]
    assert len(read) == 12 and read[3] == "results/r/classifier/candidates/0/predictions.csv"
    assert jobs.candidate_trained == "--candidates-trained"
    plain = plan()
    assert plain.classifier_candidates == [] and plain.candidate_trained == ""
    assert plain.models["classifier"].inputs["candidates"] == []


def test_each_classifier_alternative_trains_every_candidate_in_jobs_of_their_own():
    alternative = {"flip_axes": [1], "quarter_turns": False}
    jobs = plan(classifier={"candidates": [{"seed": 5}], "alternatives": [alternative]})
    settings = [json.loads(job.settings) for job in jobs.classifier_candidates]
    assert [(s["seed"], s["flip_axes"], s["quarter_turns"]) for s in settings] == [
        (0, None, True), (5, None, True), (0, [1], False), (5, [1], False)
    ]  # fmt: skip
    assert len(jobs.models["classifier"].inputs["candidates"]) == 16


def test_a_u_net_started_from_the_classifier_gets_its_encoder_and_reads_its_weights():
    classifier = {"network": "resnet10", "network_options": {"widen_factor": 0.5}}
    segmenter = {"network": "resnet_unet", "init_weights": "classifier"}
    jobs = plan(classifier=classifier, segmenter=segmenter, finetune={"pretrained": "b"}).segmenters
    weights = ["results/r/classifier/model.safetensors"]
    for name in ("pseudo-a", "supervised", "scratch-0.25-s0"):
        assert jobs[name].inputs["init"] == weights
        settings = json.loads(jobs[name].settings)
        assert settings["init_weights"] == weights[0]
        assert settings["network_options"] == {"depth": 10, "widen_factor": 0.5}
    # Fine-tuning starts from its pseudo-mask U-Net, not from the classifier again.
    pretrained = ["results/r/segmenter/pseudo-b/model.safetensors"]
    assert jobs["finetune-0.25-s0"].inputs["init"] == pretrained
