"""Typed models of `params.yaml`: the one place that knows its shape.

Every group option in `conf/` is validated here with extra keys forbidden, so a typo in a
config file or a `-S` override fails with the offending key named.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from falsereject.core.errors import UserError


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ConfigError(ValueError, UserError):
    """A config file or override is invalid; the message names the file and key."""


# --- groups ---------------------------------------------------------------------------------


class ModelConfig(Strict):
    """The student model (conf/model/): fine-tuned by `sft` and evaluated by `eval`."""

    name: str
    hf_id: str
    revision: str
    source: Literal["gguf_package", "hub"]
    gguf_package: str | None
    gguf_file: str | None
    local_dir_env: str
    max_seq_len: int = Field(gt=0)

    @model_validator(mode="after")
    def _gguf_fields(self) -> ModelConfig:
        if self.source == "gguf_package" and not (self.gguf_package and self.gguf_file):
            raise ValueError("source=gguf_package needs gguf_package and gguf_file")
        return self


class Deployment(Strict):
    """One endpoint that can serve a role (a LiteLLM Router deployment). Base URL and key come
    from the environment variables named here, never from params."""

    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$")  # its row in the ledger's by_deployment
    model: str  # the LiteLLM model id at this endpoint, e.g. openai/Qwen/Qwen2.5-7B-Instruct
    api_base_env: str | None = None
    api_key_env: str | None = None
    rpm: int | None = Field(default=None, gt=0)  # requests/minute limit (routing uses it)
    tpm: int | None = Field(default=None, gt=0)  # tokens/minute limit
    weight: float = Field(default=1.0, gt=0)  # share of traffic under simple-shuffle
    fallback: bool = False  # only tried when an attempt on the primary deployments failed


class Routing(Strict):
    """How LiteLLM's Router spreads a role's calls over its deployments."""

    strategy: Literal["simple-shuffle", "least-busy", "usage-based-routing-v2",
                      "latency-based-routing"] = "simple-shuffle"
    allowed_fails: int = Field(default=1, ge=0)  # failures of a deployment before its cooldown
    cooldown_s: float = Field(default=30.0, ge=0)  # how long a failing deployment is skipped


class RoleModel(Strict):
    """One LiteLLM model with its sampling settings.

    With `deployments`, several endpoints serve the role through LiteLLM's Router; `model`
    then names the role's answers (cache key and ledger row) whichever deployment served them.
    """

    model: str
    temperature: float = Field(ge=0.0, le=2.0)
    top_p: float = Field(gt=0.0, le=1.0)
    max_tokens: int = Field(gt=0)
    api_base_env: str | None
    api_key_env: str | None
    deployments: tuple[Deployment, ...] | None = None
    routing: Routing | None = None

    @model_validator(mode="after")
    def _deployments(self) -> RoleModel:
        if self.deployments is None:
            if self.routing is not None:
                raise ValueError("routing applies only to a role with deployments")
            return self
        names = [d.name for d in self.deployments]
        if len(set(names)) != len(names):
            raise ValueError(f"deployment names must be unique, got {names}")
        if all(d.fallback for d in self.deployments):
            raise ValueError("a role needs at least one deployment with fallback: false")
        if self.api_base_env or self.api_key_env:
            raise ValueError("with deployments, set api_base_env/api_key_env per deployment")
        return self

    def env_names(self) -> list[str]:
        """Every environment variable this role reads (base URLs and keys)."""
        if self.deployments is None:
            return [v for v in (self.api_key_env, self.api_base_env) if v]
        return [v for d in self.deployments for v in (d.api_key_env, d.api_base_env) if v]


class PoolMember(Strict):
    """A refusal-validation pool member: an LLM through the client, or a lexical filter."""

    name: str
    kind: Literal["llm", "lexical"]
    llm: RoleModel | None
    system: str | None = None  # kind=llm: a system prompt the member answers under

    @model_validator(mode="after")
    def _kind_fields(self) -> PoolMember:
        if self.kind == "llm" and self.llm is None:
            raise ValueError(f"pool member {self.name!r}: kind=llm needs an `llm` block")
        return self


class Roles(Strict):
    extractor: RoleModel
    generator: RoleModel
    discriminator: RoleModel
    orchestrator: RoleModel
    responder: RoleModel
    judge: RoleModel


class LLMConfig(Strict):
    """Which LiteLLM model plays each role (conf/llm/)."""

    name: str
    roles: Roles
    refusal_pool: list[PoolMember] = Field(min_length=1)
    # the terms every `lexical` pool member blocks on; always a path, so dvc.yaml can declare it
    moderation_terms: str

    def role_models(self) -> list[RoleModel]:
        models = [getattr(self.roles, r) for r in Roles.model_fields]
        models += [m.llm for m in self.refusal_pool if m.llm is not None]
        return models


class SeedsConfig(Strict):
    """Where toxic seeds come from (conf/seeds/)."""

    name: str
    source: Literal["jsonl", "csv", "hf"]
    path: str | None
    hf_id: str | None
    hf_revision: str | None
    hf_split: str | None
    columns: dict[str, str]
    category_format: Literal["id", "text"]
    max_per_category: int | None = Field(default=None, gt=0)
    max_seeds: int | None = Field(default=None, gt=0)
    only_ids: list[str] | None = None

    @model_validator(mode="after")
    def _source_fields(self) -> SeedsConfig:
        if self.source in ("jsonl", "csv") and not self.path:
            raise ValueError(f"seeds source={self.source} needs `path`")
        if self.source == "hf" and not (self.hf_id and self.hf_revision and self.hf_split):
            raise ValueError("seeds source=hf needs hf_id, hf_revision and hf_split")
        missing = {"prompt", "category"} - set(self.columns)
        if missing:
            raise ValueError(f"seeds.columns must map {sorted(missing)}")
        return self


class ExperimentConfig(Strict):
    name: str


class RunConfig(Strict):
    seed: int
    # a stage whose LLM calls all failed, or more than this share for endpoint reasons
    # (connection, auth, 5xx, timeout), stops with an error instead of recording the failures
    max_failed_share: float = Field(ge=0.0, le=1.0)


class ProbeConfig(Strict):
    prompt: str
    max_tokens: int = Field(gt=0)


# --- extract / generate (entity graphs, adversarial loop) ----------------------------------


class ExtractConfig(Strict):
    """Entity-graph extraction (stage `extract`)."""

    k: int = Field(ge=1, le=9)  # samples per seed; an LLM vote picks one when several parse
    retries: int = Field(ge=0)  # extra tries per sample on malformed/truncated/invalid output
    max_entities: int = Field(ge=1)
    max_relations: int = Field(ge=0)
    max_seeds: int | None = Field(default=None, gt=0)  # None: all; N: N spread over categories
    # spans: names constrained (schema enum) to 1-3 word spans of the seed prompt;
    # grounded: free names that must share a word with the prompt; free: any name
    entity_names: Literal["spans", "grounded", "free"]


class DedupConfig(Strict):
    method: Literal["embedding", "ngram"]
    threshold: float = Field(gt=0.0, le=1.0)  # drop a prompt at this similarity or above
    ngram_n: int = Field(ge=1)  # word n-grams for method=ngram


class GenerateConfig(Strict):
    """The adversarial loop, the gates, dedup and the split (stage `generate`)."""

    n_candidates: int = Field(ge=1)  # candidate prompts per seed subgraph
    max_iterations: int = Field(ge=1)  # generator/discriminator rounds per candidate
    retries: int = Field(ge=0)  # extra tries per agent call on unusable output
    min_pool_refusals: int = Field(default=1, ge=1)
    max_prompt_chars: int = Field(ge=20)
    dedup: DedupConfig
    # which subgraph entities candidates centre on: `extracted` (all, in extracted order) or
    # `lexical_blocked` (those a lexical pool member blocks, when the subgraph has any)
    focus_order: Literal["extracted", "lexical_blocked"] = "extracted"


class SplitConfig(Strict):
    """Stage `split`: a human review file applied to the accepted prompts, then a seeded
    train/test split grouped by seed (no seed on both sides) and stratified by category."""

    test_fraction: float = Field(ge=0.0, lt=1.0)  # of the seeds (groups), per category
    # a reviewed copy of data/review/accepted.csv (or .jsonl): rows labelled `harmful` or
    # `not_over_refusal` leave the dataset; always a real file (a dvc dep), empty by default
    review_file: str


# --- structure (structured responses + export) and sft (fine-tuning the student) ----------


class PartTokens(Strict):
    """max_tokens of each call under strategy per_part."""

    acknowledge: int = Field(gt=0)
    safe_answer: int = Field(gt=0)
    caution: int = Field(gt=0)
    closing: int = Field(gt=0)
    safe_reading: int = Field(gt=0)
    unsafe_reading: int = Field(gt=0)
    plan: int = Field(gt=0)


class SingleTokens(Strict):
    """max_tokens of the one call per response under strategy single."""

    instruct: int = Field(gt=0)
    cot: int = Field(gt=0)


class PartWords(Strict):
    """The checker's minimum word count of each answer part and of each reasoning part."""

    acknowledge: int = Field(ge=1)
    safe_answer: int = Field(ge=1)
    caution: int = Field(ge=1)
    closing: int = Field(ge=1)
    reasoning: int = Field(ge=1)


class StructureConfig(Strict):
    """Structured responses (stage `structure`): how the responder is asked, what passes."""

    strategy: Literal["auto", "per_part", "single"]  # auto: single, or per_part on local/
    max_records: int | None = Field(default=None, gt=0)  # None: every training prompt
    max_attempts: int = Field(ge=1, le=10)  # 1 + regenerations before a drop
    retry_min_temperature: float = Field(ge=0.0, le=2.0)  # regenerations sample at least this hot
    part_max_tokens: PartTokens
    single_max_tokens: SingleTokens
    min_words: PartWords
    require_resource_pointer: bool  # the caution part must point to a professional/resource
    min_distinct_trigrams: float = Field(ge=0.0, le=1.0)  # below: a part is a repetition loop
    trim_truncated: bool  # per_part: cut a length-stopped part back to its last full sentence
    # per_part: the cot solution's four parts are generated anew, or are the instruct parts
    cot_answer: Literal["generate", "reuse_instruct"]


class LoraParams(Strict):
    r: int = Field(gt=0)
    alpha: int = Field(gt=0)
    dropout: float = Field(ge=0.0, lt=1.0)
    target_modules: str | list[str]  # "all-linear" or module names


class MixConfig(Strict):
    """Optional general instruction data mixed into SFT (the paper mixes Tulu-3 / OpenThoughts)."""

    source: Literal["none", "hf", "jsonl"]
    hf_id: str | None
    hf_revision: str | None
    hf_name: str | None
    hf_split: str | None
    path: str | None
    messages_field: str  # column with the conversation: `messages` (role/content) or ShareGPT
    sample_size: int = Field(ge=0)

    @model_validator(mode="after")
    def _source_fields(self) -> MixConfig:
        if self.source == "hf" and not (self.hf_id and self.hf_revision and self.hf_split):
            raise ValueError("mix source=hf needs hf_id, hf_revision and hf_split")
        if self.source == "jsonl" and not self.path:
            raise ValueError("mix source=jsonl needs `path`")
        if self.source != "none" and self.sample_size == 0:
            raise ValueError(f"mix source={self.source} needs sample_size > 0")
        return self


class SftSamples(Strict):
    """Greedy answers of base and fine-tuned student to held-out prompts (reports/sft)."""

    n_prompts: int = Field(ge=0)
    max_new_tokens: int = Field(gt=0)


class SftArm(Strict):
    """One SFT arm's data recipe: which parts its training set holds (all arms start from the
    same base student). `safety`: toxic seed prompts paired with refusals; `general`: ordinary
    instructions answered by the base student, plus `mix` when set; `falsereject`: the
    pipeline's structured records (data/export/train.jsonl, target per `mode`)."""

    safety: bool
    general: bool
    falsereject: bool

    @model_validator(mode="after")
    def _not_empty(self) -> SftArm:
        if not (self.safety or self.general or self.falsereject):
            raise ValueError("an arm needs at least one of safety, general, falsereject")
        return self


class SafetyDataConfig(Strict):
    """Toxic prompts of the seeds paired with refusals (the safety part of the general recipe)."""

    n_prompts: int | None = Field(gt=0)  # seeds used (seeded sample); None: every seed
    # auto: `responder` for a hosted/vLLM responder, `file` for the embedded model (it never
    # refuses); file: the team-written refusals; responder: the responder asked to refuse
    refusals: Literal["auto", "file", "responder"]
    refusals_path: str  # JSONL of {id, category (int or null), text}: always a real file


class GeneralDataConfig(Strict):
    """Ordinary instructions answered by the base student itself (keeps general behaviour)."""

    path: str  # JSONL of {id, prompt}: always a real file
    n_instructions: int = Field(ge=0)  # seeded sample; 0: none (use `mix` alone)
    max_tokens: int = Field(gt=0)  # answer length


class SftConfig(Strict):
    """Fine-tuning of the student (conf/sft/). Device and precision come from the hardware."""

    name: str
    method: Literal["lora", "full"]
    mode: Literal["instruct", "cot"]  # which response field is the assistant target
    lora: LoraParams | None
    max_steps: int | None = Field(default=None, gt=0)  # when set, overrides epochs (as in HF)
    epochs: float | None = Field(default=None, gt=0)
    batch_size: int = Field(gt=0)  # effective: sequences per optimizer step over all devices
    max_length: int = Field(gt=0)  # tokens per sequence (capped by model.max_seq_len)
    learning_rate: float = Field(gt=0)
    lr_scheduler: Literal["linear", "cosine", "constant", "constant_with_warmup"]
    warmup_ratio: float = Field(ge=0.0, lt=1.0)
    weight_decay: float = Field(ge=0.0)
    max_grad_norm: float = Field(gt=0)
    logging_steps: int = Field(ge=1)
    system_prompt: str | None  # None: the chat template's default
    merge_adapter: bool  # LoRA: also save merged weights under models/sft/merged
    mix: MixConfig
    samples: SftSamples
    arms: dict[str, SftArm] = Field(min_length=1)  # `dvc` stage sft@<arm>, models/sft/<arm>/
    safety: SafetyDataConfig
    general: GeneralDataConfig

    @model_validator(mode="after")
    def _method_fields(self) -> SftConfig:
        if (self.method == "lora") != (self.lora is not None):
            raise ValueError("method=lora needs a `lora` block; method=full needs lora: null")
        if self.max_steps is None and self.epochs is None:
            raise ValueError("set sft.epochs or sft.max_steps (max_steps wins when both are set)")
        if self.merge_adapter and self.method != "lora":
            raise ValueError("merge_adapter applies to method=lora only")
        import re

        for key in self.arms:
            if key == "base" or not re.fullmatch(r"[a-z][a-z0-9_]*", key):
                raise ValueError(f"arm {key!r}: use lower_snake_case other than `base` (it "
                                 "names a dvc stage, a folder and a metric prefix)")
        return self


# --- eval (benchmarks, judge, metrics) -----------------------------------------------------

class BenchmarkSource(Strict):
    """Where a benchmark's rows come from: the pipeline's test split (`pipeline`), a local
    `file`, a Hugging Face dataset (`hf`) or a pinned `url`. `path` is always a local file and a
    dep of the benchmark's eval stage: the data for `pipeline`/`file`, for hub sources the notes
    on their pins (resources/benchmarks/hub_sources.md)."""

    type: Literal["pipeline", "file", "hf", "url"]
    path: str
    format: Literal["jsonl", "csv"] | None = None
    hf_id: str | None = None
    revision: str | None = None
    subset: str | None = None
    split: str | None = None
    url: str | None = None
    sha256: str | None = None

    @model_validator(mode="after")
    def _type_fields(self) -> BenchmarkSource:
        if self.type == "file" and not (self.path and self.format):
            raise ValueError("source type=file needs `path` and `format` (jsonl or csv)")
        if self.type == "hf" and not (self.hf_id and self.revision and self.split):
            raise ValueError("source type=hf needs `hf_id`, `revision` and `split`")
        if self.type == "url" and not (self.url and self.sha256 and self.format):
            raise ValueError("source type=url needs `url`, `sha256` and `format`")
        return self


class BenchmarkConfig(Strict):
    """One benchmark of `eval.benchmarks`; the dict key names its stage (`eval@<key>`)."""

    kind: Literal["own_test", "falsereject", "xstest", "orbench", "harmful_control",
                  "local_file"]
    enabled: bool
    max_samples: int | None = Field(default=None, gt=0)
    source: BenchmarkSource
    # local_file / hf-hosted control sets: upstream column -> field (prompt, id, category, label)
    columns: dict[str, str] = Field(default_factory=dict)
    # one label for every row, or `columns.label` values mapped by `label_values`
    label: Literal["benign", "toxic"] | None = None
    label_values: dict[str, Literal["benign", "toxic"]] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _kind_fields(self) -> BenchmarkConfig:
        if (self.kind == "own_test") != (self.source.type == "pipeline"):
            raise ValueError("kind=own_test goes with source type=pipeline (and only it)")
        if self.kind == "orbench" and self.label is None:
            raise ValueError("kind=orbench needs `label` (benign for hard-1k, toxic for toxic)")
        if self.kind == "local_file":
            if "prompt" not in self.columns:
                raise ValueError("kind=local_file needs columns.prompt")
            if self.label is None and not ("label" in self.columns and self.label_values):
                raise ValueError("kind=local_file needs `label` (whole file) or columns.label "
                                 "with label_values (per row)")
        return self


class JudgeConfig(Strict):
    """The three-class judge (conf/judge/): `fast` (the fast path only), `llm` (LLM judge only) or
    `cascade` (fast path first, the LLM judge for what it leaves undecided). The LLM judge decides
    rows only when its kappa measured by `calibrate` is at least `min_kappa`."""

    name: str
    mode: Literal["fast", "llm", "cascade"]
    # fast-path outcomes the cascade accepts without asking the LLM judge
    fast_accept: list[Literal["refusal", "partial", "compliance"]]
    prompt: str = Field(pattern=r"^[a-z0-9_]+$")  # template prompts/judge/<prompt>.yaml
    output_format: Literal["brackets", "json"]
    max_response_chars: int | None = Field(gt=0)  # None: the answer is never clipped
    min_kappa: float = Field(ge=-1.0, le=1.0)
    model: RoleModel | None  # None: llm.roles.judge
    # the fast path's embedding override (evaluation/override.py): when the embedding classifier
    # in override_path is confident that a rules compliance/partial is a refusal, the answer is
    # left undecided (abstain) or becomes a refusal (flip); flip_or_abstain: a refusal when the
    # classifier is sure, undecided when it only leans that way
    embedding_override: bool = False
    override_action: Literal["abstain", "flip", "flip_or_abstain"] = "abstain"
    override_path: str = "resources/judge_override.json"


class ModeTokens(Strict):
    instruct: int = Field(gt=0)
    cot: int = Field(gt=0)


class EvalGenerationConfig(Strict):
    """How models under test answer benchmark prompts."""

    # per answer mode: instruct answers (four parts) and chain-of-thought ones (trace + answer)
    max_tokens: ModeTokens
    temperature: float = Field(ge=0.0, le=2.0)
    system_prompt: str | None


class CalibrationConfig(Strict):
    """Labelled (prompt, response, label) files: `dev_path` is what the fast path was developed
    on, `heldout_path` was written apart and only measures; `gate_file` names the one whose
    LLM-judge kappa gates the eval cascade."""

    dev_path: str
    heldout_path: str
    gate_file: Literal["dev", "heldout"]
    llm_max_rows: int | None = Field(default=None, gt=0)


class EvalConfig(Strict):
    benchmarks: dict[str, BenchmarkConfig]
    generation: EvalGenerationConfig
    max_samples_per_benchmark: int | None = Field(default=None, gt=0)
    bootstrap_samples: int = Field(ge=0)
    ci_level: float = Field(gt=0.0, lt=1.0)
    extra_models: list[RoleModel]
    calibration: CalibrationConfig

    @model_validator(mode="after")
    def _benchmark_keys(self) -> EvalConfig:
        import re

        for key in self.benchmarks:
            if not re.fullmatch(r"[a-z][a-z0-9_]*", key):
                raise ValueError(f"benchmark key {key!r}: use lower_snake_case (it names a "
                                 "dvc stage and an output folder)")
        return self


# --- analyses of the arms (kl, capability) and the report's headline -------------------------


class KlConfig(Strict):
    """Per-position KL(arm || base) over the first response tokens (stage kl)."""

    n_prompts: int = Field(gt=0)  # per prompt set (harmful, benign), seeded sample
    n_tokens: int = Field(gt=0)  # response positions compared
    harmful: str  # eval.benchmarks key of the harmful prompts
    benign: str  # eval.benchmarks key of the benign prompts


class CapabilityTask(Strict):
    enabled: bool
    limit: int | None = Field(default=None, gt=0)  # items per task (first N); None: all
    num_fewshot: int | None = Field(default=None, ge=0)


class CapabilityConfig(Strict):
    """General capability of base and arms with lm-evaluation-harness (stage capability)."""

    include_path: str  # folder of custom task YAMLs (always a real folder)
    data_path: str  # the local task's data folder (always a real folder)
    tasks: dict[str, CapabilityTask] = Field(min_length=1)  # lm-eval task names
    batch_size: int = Field(gt=0)


class ReportConfig(Strict):
    """The report's headline: arms compared on one benign and one toxic benchmark."""

    benign: str  # eval.benchmarks key: compliance rate and USR benign
    toxic: str  # eval.benchmarks key: USR toxic
    reference_arm: str  # paired differences are taken against this arm


class CompareConfig(Strict):
    """Stage `compare`: the paper's Table 1 for any prompt sets, by a fixed evaluation pool."""

    pool: list[PoolMember] = Field(min_length=1)  # apart from llm.refusal_pool
    moderation_terms: str  # for lexical members of `pool`; always a real file (a dvc dep)
    max_prompts: int | None = Field(default=None, gt=0)  # per set, seeded subset; null: all
    sets: dict[str, BenchmarkConfig]
    reference: str  # CSV of the paper's published rows (quoted, never recomputed)


class Params(BaseModel):
    """The whole of params.yaml. Stage sections not modelled yet pass through as dicts."""

    model_config = ConfigDict(extra="allow", frozen=True)

    model: ModelConfig
    llm: LLMConfig
    seeds: SeedsConfig
    experiment: ExperimentConfig
    run: RunConfig
    probe: ProbeConfig
    eval: EvalConfig
    judge: JudgeConfig
    extract: ExtractConfig
    generate: GenerateConfig
    split: SplitConfig
    compare: CompareConfig
    structure: StructureConfig
    sft: SftConfig
    kl: KlConfig
    capability: CapabilityConfig
    report: ReportConfig


# --- loading --------------------------------------------------------------------------------


def _format_error(source: str, err: ValidationError) -> str:
    lines = [f"invalid config in {source}:"]
    for e in err.errors():
        key = ".".join(str(p) for p in e["loc"])
        lines.append(f"  {key}: {e['msg']}")
    return "\n".join(lines)


def validate(data: dict[str, Any], source: str = "params.yaml") -> Params:
    try:
        return Params.model_validate(data)
    except ValidationError as err:
        raise ConfigError(_format_error(source, err)) from None


def validate_section(model: type[BaseModel], data: Any, source: str) -> Any:
    try:
        return model.model_validate(data)
    except ValidationError as err:
        raise ConfigError(_format_error(source, err)) from None


def load_params(path: str | Path = "params.yaml") -> Params:
    path = Path(path)
    if not path.exists():
        raise ConfigError(f"{path} not found: run `make compose` to generate it from conf/")
    if path.is_dir():
        raise ConfigError(f"{path} is a directory, expected the params file")
    with path.open(encoding="utf-8-sig") as fh:
        data = yaml.safe_load(fh) or {}
    return validate(data, str(path))
