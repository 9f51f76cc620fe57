"""Project tests: offline always, seeded, never writing into the source tree; every test in a tier.

Each test carries at least one marker that says what it costs, from the cheapest tier to the dearest:

    unit        in this process, no child Python that imports torch, no judge, no jail, no training
    subprocess  starts child Pythons that import torch (the CLI, pytest on the public checks, batch workers)
    jail        starts bwrap or grades a submission through the judge (with the jail, or without it)
    dask        starts a Dask cluster (scheduler and workers)
    notebook    runs a notebook in a Jupyter kernel (papermill / nbclient)
    slow        trains a real model for minutes

A test's *tier* is its dearest marker; ``--tier dev`` (the developer's tier, ``unit``) and the other
tier names select by it, so the tiers split the suite without overlap and ``pytest`` alone runs all.
Markers come from the tables below (module, then test, then fixtures used) or from the test itself;
``unit`` is dropped wherever a dearer marker applies. A test with no marker stops the collection.
"""

import os

import pytest

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["HF_DATASETS_OFFLINE"] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("GOMP_SPINCOUNT", "10000")  # tests run a judge beside its runner: see procs.thread_env

TIERS = ("unit", "subprocess", "jail", "dask", "notebook", "slow")  # cheapest first
ALIASES = {"dev": "unit"}

# What every test of a module costs, unless TESTS or FIXTURES say otherwise.
MODULES = {
    "test_architecture": "unit",
    "test_bad_input": "jail",
    "test_batch": "jail",
    "test_batch_hostile": "unit",
    "test_busy_machine": "unit",
    "test_calibration": "unit",
    "test_class_report": "unit",
    "test_classroom": "unit",
    "test_corpus": "unit",
    "test_dask_cluster": "dask jail",
    "test_dask_engine": "unit",
    "test_dask_gpu": "unit",
    "test_data": "unit",
    "test_diagnose": "unit",
    "test_exports": "unit",
    "test_external_data": "unit",
    "test_feedback": "unit",
    "test_grader_references": "unit",
    "test_hostile_boundary": "unit",
    "test_hostile_evaluator": "unit",
    "test_hostile_grading": "jail",
    "test_hostile_inputs": "jail",
    "test_hostile_jail": "jail",
    "test_hostile_walls": "jail",
    "test_learner_messages": "unit",
    "test_manifest": "unit",
    "test_metrics": "unit",
    "test_model_tier": "notebook jail",
    "test_model_tier_real": "notebook jail",
    "test_model_tier_sandbox": "notebook jail",
    "test_models": "unit",
    "test_mutants": "jail",
    "test_nbrun_interrupt": "notebook",
    "test_nli_notebook": "unit",
    "test_notebooks_teach": "notebook",
    "test_practice_workflow": "unit",
    "test_preview": "unit",
    "test_public_checks": "unit",
    "test_release": "unit",
    "test_sandbox_status": "unit",
    "test_second_reading": "unit",
    "test_stages": "jail",
    "test_stats": "unit",
    "test_stubs": "unit",
    "test_student_loop": "unit",
    "test_tiers": "unit",
    "test_warm_runner": "jail",
    "test_wire": "unit",
    "test_zero_shot_cache": "unit",
}

# Tests that cost something other than their module's default ("module::function", every parametrization).
TESTS = {
    "test_batch_hostile::test_without_the_jail_a_killer_fails_alone_and_tampering_is_undone": "jail",
    "test_batch_hostile::test_workers_that_die_hang_flood_or_lie_fail_only_their_submission": "subprocess",
    "test_batch_hostile::test_a_batch_killed_midway_leaves_no_worker_behind": "subprocess",
    "test_dask_engine::test_cluster_slurm_starts_jobs_with_the_course_options": "dask",
    "test_dask_gpu::test_model_tier_tasks_ask_for_a_gpu_only_where_one_exists": "dask",
    "test_external_data::test_the_capstone_notebook_trains_on_a_hub_style_folder": "notebook",
    "test_hostile_grading::test_unreadable_results_lines_are_errors_not_crashes": "unit",
    "test_hostile_inputs::test_symlink_race_against_the_judges_read_never_wins": "unit",
    "test_hostile_inputs::test_messages_cut_values_before_repr": "unit",
    "test_hostile_inputs::test_a_saved_config_cannot_make_the_judge_build_something_else": "unit",
    "test_learner_messages::test_autograder_check_shows_the_fix_words": "subprocess",
    "test_model_tier::test_the_evaluator_loads_a_model_without_a_progress_bar": "unit",
    "test_model_tier_sandbox::test_a_changed_test_split_is_refused_even_with_a_matching_manifest": "unit",
    "test_model_tier_sandbox::test_a_notebook_that_is_a_symlink_is_refused_unread": "unit",
    "test_model_tier_sandbox::test_an_oversized_notebook_is_refused_unread": "unit",
    "test_model_tier_sandbox::test_the_result_states_the_sandbox": "unit",
    "test_model_tier_sandbox::test_pickled_weights_are_never_loaded": "unit",
    "test_model_tier_sandbox::test_copy_out_takes_only_plain_allowed_files": "unit",
    "test_model_tier_sandbox::test_copy_out_does_not_follow_a_linked_folder": "unit",
    "test_model_tier_sandbox::test_the_package_hashes_agree_with_the_cache_manifest": "unit",
    "test_model_tier_sandbox::test_the_evaluator_imports_nothing_from_solutions_or_gradelib": "subprocess",
    "test_model_tier_sandbox::test_the_evaluators_zero_shot_matches_the_reference": "unit",
    "test_nli_notebook::test_the_emotion_notebook_compares_with_nli_zero_shot": "notebook",
    "test_notebooks_teach::test_every_cell_to_fill_is_marked_and_stubbed_for_a_notebook": "unit",
    "test_notebooks_teach::test_a_stub_raised_in_a_stage_module_names_the_stage": "unit",
    "test_notebooks_teach::test_the_baseline_line_warns_only_when_the_model_does_not_beat_it": "unit",
    "test_preview::test_status_in_a_fresh_release_lists_hidden_checks_and_thresholds": "subprocess",
    "test_public_checks::test_solutions_pass_and_stubs_fail_every_public_check": "subprocess",
    "test_release::test_plain_pytest_inside_the_release_runs_the_public_checks_without_warnings": "subprocess",
    "test_release::test_public_checks_run_inside_the_release": "subprocess",
    "test_sandbox_status::test_every_report_states_the_sandbox": "jail",
    "test_stages::test_every_grader_check_is_in_the_manifest": "unit",
    "test_student_loop::test_check_in_the_kernel_says_what_autograder_check_says": "subprocess",
}

# Fixtures whose setup costs more than the tests' module says: every test that uses one gets its markers.
FIXTURES = {
    "jailed_class": "jail",  # test_batch_hostile: a class graded in the jail
}

TIER_KEY = pytest.StashKey[str]()


def pytest_addoption(parser):
    parser.addoption("--tier", action="append", default=[], metavar="NAME",
                     help=f"run only the tests whose dearest marker is NAME ({', '.join(TIERS)}; dev = unit); "
                          "repeat or comma-separate for several; default: every test")


def cost_markers(module: str, function: str, fixtures, own) -> set[str]:
    """The cost markers of one test: its own, its table entry (test, else module), its fixtures'."""
    table = TESTS.get(f"{module}::{function}", MODULES.get(module, ""))
    marks = set(own) | set(table.split())
    for name in fixtures:
        marks |= set(FIXTURES.get(name, "").split())
    if "unit" in marks and len(marks) > 1 and "unit" not in own:
        marks.discard("unit")  # a module's default never makes a dearer test look cheap
    return marks


def tier_of(marks) -> str:
    return max(marks, key=TIERS.index)


def wanted_tiers(config) -> set[str]:
    names = {ALIASES.get(n.strip(), n.strip()) for v in config.getoption("tier") for n in v.split(",") if n.strip()}
    if unknown := names - set(TIERS) - {"all"}:
        raise pytest.UsageError(f"--tier {', '.join(sorted(unknown))}: the tiers are {', '.join(TIERS)} (dev = unit)")
    return set(TIERS) if not names or "all" in names else names


@pytest.hookimpl(tryfirst=True)  # before -m reads the markers
def pytest_collection_modifyitems(config, items):
    unmarked, mixed = [], []
    for item in items:
        module = item.path.stem
        own = {m.name for m in item.iter_markers() if m.name in TIERS}
        marks = cost_markers(module, getattr(item, "originalname", item.name), item.fixturenames, own)
        if not marks:
            unmarked.append(item.nodeid)
            continue
        if "unit" in marks and len(marks) > 1:
            mixed.append(item.nodeid)
        for name in sorted(marks - own):
            item.add_marker(name)
        item.stash[TIER_KEY] = tier_of(marks)
    if unmarked or mixed:
        raise pytest.UsageError(
            "every test needs a cost marker (" + ", ".join(TIERS) + "): add its module to MODULES in "
            "tests/conftest.py or mark the test" + "".join(f"\n  no marker: {n}" for n in unmarked)
            + "".join(f"\n  marked unit and a dearer marker: {n}" for n in mixed))
    wanted = wanted_tiers(config)
    if wanted != set(TIERS):
        keep = [i for i in items if i.stash[TIER_KEY] in wanted]
        if dropped := [i for i in items if i.stash[TIER_KEY] not in wanted]:
            config.hook.pytest_deselected(items=dropped)
            items[:] = keep


def pytest_report_header(config):
    wanted = wanted_tiers(config)
    return "tiers: " + ("all" if wanted == set(TIERS) else ", ".join(t for t in TIERS if t in wanted))
