"""Benchmark loaders on small fixtures in the exact upstream formats (tests/fixtures/benchmarks),
the hub/url sources offline, and deterministic subsampling."""

from __future__ import annotations

import hashlib
import shutil

import pytest
import yaml

from falsereject.core.config import BenchmarkConfig, load_params
from falsereject.core.hub import HubUnavailableError
from falsereject.core.io import InputError
from falsereject.evaluation.benchmarks import KINDS, load_benchmark, select, sources
from falsereject.evaluation.benchmarks.sample import Sample


@pytest.fixture
def fx(root):
    return root / "tests" / "fixtures" / "benchmarks"


def bench(**kw) -> BenchmarkConfig:
    return BenchmarkConfig.model_validate({"enabled": True, **kw})


@pytest.fixture
def fake_hub(monkeypatch):
    """Serve hub datasets from fixture files, recording what was asked for."""
    import datasets

    served: dict[tuple, object] = {}
    asked: list[tuple] = []

    def load(hf_id, revision, split, name=None):
        asked.append((hf_id, revision, split, name))
        return served[(hf_id, name, split)]

    monkeypatch.setattr(sources, "load_hf_dataset", load)

    def serve(hf_id, name, split, path):
        if str(path).endswith(".csv"):
            ds = datasets.load_dataset("csv", data_files=str(path), split="train")
        else:
            ds = datasets.load_dataset("json", data_files=str(path), split="train")
        served[(hf_id, name, split)] = ds

    serve.asked = asked
    return serve


def test_every_kind_has_a_mapping_citation_and_revision_attribute():
    for module in KINDS.values():
        assert callable(module.to_sample) and module.CITATION
        assert hasattr(module, "REVISION")


def test_own_test_split(root):
    cfg = bench(kind="own_test", source={"type": "pipeline", "path": "data/generate/test.jsonl"})
    samples = load_benchmark("own_test", cfg,
                             pipeline_path=str(root / "tests/fixtures/benchmarks/own_test_split.jsonl"))
    assert len(samples) == 6 and all(s.label == "benign" for s in samples)
    assert samples == sorted(samples, key=lambda s: s.id)
    assert samples[0].id == "gen-fx0000000001" and samples[0].category == "Medical Advice"


def test_falsereject_test_split_from_the_hub(fake_hub, fx):
    fake_hub("AmazonScience/FalseReject", None, "test", fx / "falsereject_test.jsonl")
    cfg = bench(kind="falsereject", source={"type": "hf", "path": "resources/benchmarks/hub_sources.md", "hf_id": "AmazonScience/FalseReject",
                                            "revision": "main", "split": "test"})
    samples = load_benchmark("falsereject", cfg)
    assert fake_hub.asked == [("AmazonScience/FalseReject", "main", "test", None)]
    assert len(samples) == 3 and {s.label for s in samples} == {"benign"}
    assert {s.category for s in samples} >= {"Self-Harm"}
    assert all(s.id.startswith("falsereject-") for s in samples)
    assert not sources.is_pinned(cfg.source)


def test_xstest_from_the_pinned_url_cache(fx, tmp_path, monkeypatch):
    raw = (fx / "xstest_prompts.csv").read_bytes()
    sha = hashlib.sha256(raw).hexdigest()
    monkeypatch.setenv(sources.ENV_CACHE, str(tmp_path))
    shutil.copy(fx / "xstest_prompts.csv", tmp_path / sha)
    cfg = bench(kind="xstest", source={"type": "url", "path": "resources/benchmarks/hub_sources.md", "url": "https://example.invalid/x.csv",
                                       "sha256": sha, "format": "csv"})
    samples = {s.id: s for s in load_benchmark("xstest", cfg)}
    assert len(samples) == 6
    assert samples["xstest-001"].label == "benign"
    assert samples["xstest-026"].label == "toxic"
    assert samples["xstest-026"].category == "contrast_homonyms"


def test_url_source_rejects_a_changed_file_and_fails_clearly_offline(fx, tmp_path, monkeypatch):
    monkeypatch.setenv(sources.ENV_CACHE, str(tmp_path))
    shutil.copy(fx / "xstest_prompts.csv", tmp_path / ("0" * 64))  # wrong content for its name
    with pytest.raises(HubUnavailableError, match="offline.*source \\{type: file"):
        sources.fetch_pinned("https://example.invalid/x.csv", "0" * 64)
    assert not (tmp_path / ("0" * 64)).exists()


def test_orbench_hard_and_toxic(fake_hub, fx):
    rev = "e36d8b80e81837c8a8f264bbb2a49f1b32c7e272"
    fake_hub("bench-llm/or-bench", "or-bench-hard-1k", "train", fx / "or-bench-hard-1k.csv")
    fake_hub("bench-llm/or-bench", "or-bench-toxic", "train", fx / "or-bench-toxic.csv")
    src = {"type": "hf", "path": "resources/benchmarks/hub_sources.md", "hf_id": "bench-llm/or-bench", "revision": rev, "split": "train"}
    hard = load_benchmark("orbench_hard", bench(kind="orbench", label="benign",
                                                source={**src, "subset": "or-bench-hard-1k"}))
    toxic = load_benchmark("orbench_toxic", bench(kind="orbench", label="toxic",
                                                  source={**src, "subset": "or-bench-toxic"}))
    assert len(hard) == 3 and {s.label for s in hard} == {"benign"}
    assert len(toxic) == 2 and {s.label for s in toxic} == {"toxic"}
    assert hard[0].id.startswith("orbench-hard-1k-") and toxic[0].category in {"harassment",
                                                                                 "harmful"}
    with pytest.raises(InputError, match="set label: toxic"):
        load_benchmark("x", bench(kind="orbench", label="benign",
                                  source={**src, "subset": "or-bench-toxic"}))


def test_harmful_control_team_file_and_hf_by_config(root, fake_hub, fx):
    cfg = bench(kind="harmful_control", columns={"id": "id", "prompt": "prompt",
                                                 "category": "category"},
                source={"type": "file", "path": str(root / "resources/harmful_control.jsonl"),
                        "format": "jsonl"})
    samples = load_benchmark("harmful_control", cfg)
    assert len(samples) >= 80 and {s.label for s in samples} == {"toxic"}
    assert samples[0].id == "harm-001" and samples[0].category == "Personal Insulting Words"
    fake_hub("someone/harmful", None, "train", fx / "or-bench-toxic.csv")
    cfg = bench(kind="harmful_control", columns={"prompt": "prompt", "category": "category"},
                source={"type": "hf", "path": "resources/benchmarks/hub_sources.md", "hf_id": "someone/harmful", "revision": "a" * 40,
                        "split": "train"})
    samples = load_benchmark("hc", cfg)
    assert len(samples) == 2 and samples[0].id.startswith("harm-")


def test_local_file_jsonl_with_per_row_labels(fx):
    cfg = bench(kind="local_file", columns={"id": "uid", "prompt": "question",
                                            "category": "area", "label": "kind"},
                label_values={"safe": "benign", "unsafe": "toxic"},
                source={"type": "file", "path": str(fx / "local_prompts.jsonl"),
                        "format": "jsonl"})
    samples = {s.id: s for s in load_benchmark("mine", cfg)}
    assert samples["p1"].label == "benign" and samples["p2"].label == "toxic"
    assert samples["p2"].category == "animals"


def test_local_file_csv_with_one_label_and_the_repo_example(root):
    cfg = bench(kind="local_file", columns={"prompt": "text"}, label="toxic",
                source={"type": "file", "format": "csv",
                        "path": str(root / "resources/benchmarks/example_prompts.csv")})
    samples = load_benchmark("mine", cfg)
    assert len(samples) == 6 and {s.label for s in samples} == {"toxic"}
    assert all(s.id.startswith("mine-") for s in samples)
    shipped = load_params(root / "params.yaml").eval.benchmarks["my_prompts"]
    labels = {s.id: s.label for s in load_benchmark("my_prompts", shipped.model_copy(
        update={"source": shipped.source.model_copy(
            update={"path": str(root / shipped.source.path)})}))}
    assert labels["ex-01"] == "benign" and labels["ex-04"] == "toxic"


def test_bad_rows_name_file_and_line(tmp_path):
    path = tmp_path / "p.jsonl"
    path.write_text('{"q": "fine", "l": "safe"}\n{"q": "", "l": "safe"}\n')
    cfg = bench(kind="local_file", columns={"prompt": "q", "label": "l"},
                label_values={"safe": "benign"},
                source={"type": "file", "path": str(path), "format": "jsonl"})
    with pytest.raises(InputError, match=r"p\.jsonl:2: field 'q'"):
        load_benchmark("mine", cfg)
    path.write_text('{"q": "a", "l": "maybe"}\n')
    with pytest.raises(InputError, match=r"p\.jsonl:1: l='maybe'"):
        load_benchmark("mine", cfg)
    path.write_text('{"id": "x", "q": "a", "l": "safe"}\n{"id": "x", "q": "b", "l": "safe"}\n')
    cfg2 = cfg.model_copy(update={"columns": {"id": "id", "prompt": "q", "label": "l"}})
    with pytest.raises(InputError, match="duplicate sample id 'x'"):
        load_benchmark("mine", cfg2)
    path.write_text("")
    with pytest.raises(InputError, match="holds no rows"):
        load_benchmark("mine", cfg)


def test_real_hub_loader_fails_clearly_offline():
    cfg = bench(kind="orbench", label="benign",
                source={"type": "hf", "path": "resources/benchmarks/hub_sources.md", "hf_id": "bench-llm/or-bench", "subset": "or-bench-hard-1k",
                        "revision": "e36d8b80e81837c8a8f264bbb2a49f1b32c7e272", "split": "train"})
    with pytest.raises(HubUnavailableError, match="hub access"):
        load_benchmark("orbench_hard", cfg)


def test_config_validation_names_the_problem():
    with pytest.raises(ValueError, match="needs `hf_id`, `revision` and `split`"):
        bench(kind="falsereject", source={"type": "hf", "path": "resources/benchmarks/hub_sources.md", "hf_id": "x"})
    with pytest.raises(ValueError, match="own_test goes with source type=pipeline"):
        bench(kind="own_test", source={"type": "file", "path": "x", "format": "csv"})
    with pytest.raises(ValueError, match="columns.prompt"):
        bench(kind="local_file", label="benign",
              source={"type": "file", "path": "x", "format": "csv"})


def test_shipped_benchmarks_validate_and_hub_sets_are_disabled(root):
    raw = yaml.safe_load((root / "params.yaml").read_text())["eval"]["benchmarks"]
    cfgs = {k: BenchmarkConfig.model_validate(v) for k, v in raw.items()}
    assert {k for k, c in cfgs.items() if c.enabled} == {"own_test", "harmful_control", "benign_edgy"}
    assert cfgs["orbench_hard"].source.revision == "e36d8b80e81837c8a8f264bbb2a49f1b32c7e272"
    assert "d7bb5bd738c1fcbc36edd83d5e7d1b71a3e2d84d" in cfgs["xstest"].source.url


def _s(i):
    return Sample(f"id-{i}", "p", "benign", None, "b", "here")


def test_select_is_deterministic_and_stable_under_additions():
    pool = [_s(i) for i in range(50)]
    a = select(pool, 10, seed=0)
    assert a == select(list(reversed(pool)), 10, seed=0)
    assert a == sorted(a, key=lambda s: s.id) and len(a) == 10
    assert a != select(pool, 10, seed=1)
    bigger = select(pool + [_s(i) for i in range(50, 55)], 10, seed=0)
    assert len(set(a) & set(bigger)) >= 8
    assert select(pool, None, seed=0) == sorted(pool, key=lambda s: s.id)
