"""The embedded models as a LiteLLM custom provider: `local/<name>` requests go to the
in-process batching engine (`falsereject.llm.local`), so no stage knows it is not an API."""

from __future__ import annotations

import asyncio
from typing import Any

LOCAL_PREFIX = "local/"


def _local_response(litellm: Any, model_response: Any, model: str, result: Any) -> Any:
    model_response.choices[0].message.content = result.text
    model_response.choices[0].finish_reason = result.finish_reason
    model_response.model = model
    model_response.usage = litellm.Usage(
        prompt_tokens=result.prompt_tokens,
        completion_tokens=result.completion_tokens,
        total_tokens=result.prompt_tokens + result.completion_tokens,
    )
    return model_response


def _local_request(messages: list, optional_params: dict) -> Any:
    from falsereject.llm.local.engine import GenRequest

    fmt = optional_params.get("response_format") or {}
    schema = None
    if isinstance(fmt, dict) and fmt.get("type") == "json_schema":
        schema = (fmt.get("json_schema") or {}).get("schema")
    req = GenRequest.build(
        messages,
        max_tokens=optional_params.get("max_tokens") or 256,
        temperature=optional_params.get("temperature") or 0.0,
        top_p=optional_params.get("top_p") or 1.0,
        seed=optional_params.get("seed"),
        json_schema=schema,
    )
    return req


def local_provider(litellm: Any) -> Any:
    """The `local/` provider object (its class derives from LiteLLM's, so it is made at
    LiteLLM's import)."""

    class LocalProvider(litellm.CustomLLM):
        """`local/<name>`: in-process models from `falsereject.llm.local.engine`, batched."""

        def completion(self, model, messages, api_base, custom_prompt_dict, model_response,
                       print_verbose, encoding, api_key, logging_obj, optional_params, *args, **kw):
            from falsereject.llm.local.engine import get_engine

            name = model.split("/", 1)[-1]
            result = get_engine(name).submit(_local_request(messages, optional_params)).result()
            return _local_response(litellm, model_response, model, result)

        async def acompletion(self, model, messages, api_base, custom_prompt_dict, model_response,
                              print_verbose, encoding, api_key, logging_obj, optional_params,
                              *args, **kw):
            from falsereject.llm.local.engine import get_engine

            name = model.split("/", 1)[-1]
            req = _local_request(messages, optional_params)
            # Loading the model takes seconds: do it off the event loop.
            engine = await asyncio.to_thread(get_engine, name)
            result = await asyncio.wrap_future(engine.submit(req))
            return _local_response(litellm, model_response, model, result)

    return LocalProvider()
