#!/usr/bin/python3
"""Render the DeepSeek chat templates with Jinja2 as Hugging Face transformers does and write the
golden rows test_chat checks ds_chat_render against (see README.md).

usage: make_golden.py FIXTURES_DIR    (the folder holding tokenizer-deepseek-v3/, tokenizer-tiny/)

Writes deepseek-r1.jsonl, deepseek-v2.jsonl, deepseek-v3.jsonl, deepseek-v3.1.jsonl,
deepseek-r1-distill.jsonl, deepseek-coder.jsonl, qwen3.jsonl and chatml.jsonl next to this script.
Every conversation is rendered with add_generation_prompt true and false, V3.1's also with thinking
true and false, Qwen3's with enable_thinking unset, false and true (and some with tools). A row
whose "text" is null is one where the template raises an error (the renderer must refuse it too).
It also renders the V3.1 rows through llama.cpp's copy of that template, and the R1-distill rows
through llama.cpp's reformatted copy of the Llama-8B distill's, and says how many come out
different (README.md explains why)."""
import json
import os
import sys

import jinja2
import jinja2.ext
from jinja2.sandbox import ImmutableSandboxedEnvironment

HERE = os.path.dirname(os.path.abspath(__file__))
BOS = "<｜begin▁of▁sentence｜>"
EOS = "<｜end▁of▁sentence｜>"


def environment():
    # transformers' _compile_jinja_template: sandboxed, trim_blocks, lstrip_blocks,
    # loopcontrols, and a raise_exception global
    def raise_exception(message):
        raise jinja2.exceptions.TemplateError(message)

    # and its own tojson (json.dumps, not Jinja's HTML-safe one); llama.cpp's templates also
    # use from_json, which llama.cpp's Jinja engine has
    def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
        return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators,
                          sort_keys=sort_keys)

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True,
                                        extensions=[jinja2.ext.loopcontrols])
    env.globals["raise_exception"] = raise_exception
    env.filters["tojson"] = tojson
    env.filters["from_json"] = json.loads
    return env


def call(name, args):
    return {"type": "function", "function": {"name": name, "arguments": args}}


# messages by role, for the conversations below
def u(c): return {"role": "user", "content": c}
def a(c): return {"role": "assistant", "content": c}
def s(c): return {"role": "system", "content": c}
def t(c): return {"role": "tool", "content": c}
def calls(content, *cs): return {"role": "assistant", "content": content, "tool_calls": list(cs)}


weather = call("get_weather", '{"city": "Paris"}')


def extra_conversations():
    """Conversations beyond the fixtures': reasoning stripping, tool-call quirks, errors."""
    time_ = call("get_time", '{"tz": "Europe/Paris"}')
    return [
        # several reasoning turns: R1 keeps only what follows the last </think>
        [s("Think step by step."), u("2+2?"), a("<think>\n2+2 is 4.\n</think>\n\n4."),
         u("3*3?"), a("<think>3*3 = 9</think>9"), u("And 10/2?")],
        # no </think>: kept whole; two </think>: only the text after the second
        [u("Start."), a("<think>\nan unfinished thought"), u("Go on.")],
        [u("Q"), a("<think>a</think>b</think>\n\nc"), u("Again?"), a("</think>"), u("More.")],
        [u("Hi"), a(""), u("Empty answer?")],
        [u("Hi"), a("<think>only reasoning</think>")],
        # an assistant message with text and tool calls, then a second tool-call turn
        [u("Weather and time in Paris?"),
         calls("<think>need tools</think>Let me check.", weather, time_, call("noop", "{}")),
         t("18 C"), t("14:00"), t("ok"),
         a("<think>combine</think>It is 18 C at 14:00."), u("And tomorrow?"),
         calls(None, weather), t("20 C"),
         a("Tomorrow: 20 C.")],
        # tool outputs followed by a user turn, and by a reasoning answer
        [u("Check."), calls(None, weather), t("18 C"), u("Thanks, now summarise.")],
        [u("Check."), calls(None, weather), t("18 C"), a("<think>easy</think>18 C.")],
        # roles the templates do not know are skipped; system messages anywhere
        [{"role": "developer", "content": "ignored?"}, u("Hi"),
         s("A late system message."), {"role": "function", "content": "x"}, a("Hello.")],
        [s("Only a system prompt.")],
        [],
        [s("First.\nTwo lines."), s(""), s("Third: 中文 😀"), u("Hello")],
        # null content: an error in some templates, nothing in others
        [u("Hi"), a(None)],
        [u(None)],
        [u("Hi"), t(None)],
        [s(None), u("Hi")],
    ]


def v31_conversations():
    """V3.1's own cases: its tool-call format, answers after tool outputs, no user before an answer."""
    odd = call("search", '{ "q":"caf\\u00e9",\n  "n" : 3 }')
    return [
        # the format of the model card: a system prompt, a question, a thought-through answer
        [s("You are a helpful assistant"), u("Who are you?"),
         a("<think>The user asks who I am.</think>I am DeepSeek."), u("1+1=?")],
        # answers after tool outputs keep their reasoning and get no <｜Assistant｜>
        [s("Use tools."), u("Weather?"), calls("<think>call it</think>", weather, odd),
         t("18 C"), t("[]"), a("<think>combine</think>It is 18 C."), u("Thanks")],
        [u("Weather?"), calls(None, weather), t("18 C")],
        [u("Weather?"), calls("", weather), t("18 C"), a("18 C.")],
        # two tool-call turns in a row, then a call right after a tool output
        [u("Go"), calls(None, weather), calls("more", odd), t("x"), calls(None, weather), t("y"),
         a("done")],
        # no user before the assistant: no <｜Assistant｜> at all
        [s("Sys"), a("<think>r</think>orphan answer")],
        [a("first"), u("Hi")],
        [u("one"), u("two")],
        # a call without arguments or name: None + str
        [u("x"), calls(None, call("f", None))],
        [u("x"), calls(None, call(None, "{}"))],
        # an answer of None after a tool output: None + str
        [u("x"), calls(None, weather), t("out"), a(None)],
    ]


WEATHER_TOOL = ('[{"type": "function", "function": {"name": "get_weather", "description": '
                '"Weather in a city, \u00e9t\u00e9 included", "parameters": {"type": "object", '
                '"properties": {"city": {"type": "string"}, "days": {"type": "integer", "default": 1.50}},'
                ' "required": ["city"]}}}]')


def qwen3_conversations():
    """Qwen3's own cases: reasoning after the last query, tool responses as user turns, tools."""
    return [
        # the reasoning of the answer after the last user message is kept, earlier ones dropped
        [u("2+2?"), a("<think>\n2+2 is 4.\n</think>\n\n4.")],
        [u("2+2?"), a("<think>\n2+2 is 4.\n</think>\n\n4."), u("3*3?")],
        [u("2+2?"), a("\n\n4.")],
        [u("Q"), a("<think>x<think>y</think>z</think>\nw")],
        [u("Q"), a("no tags at all"), a("<think>r</think>second")],
        # tool calls: after text on a new line, without text directly, arguments as written
        [s("Sys."), u("Weather?"), calls("Checking.", weather, call("get_time", '{"tz":"UTC"}')),
         t("18 C"), t("14:00"), a("<think>ok</think>18 C at 14:00.")],
        [u("Weather?"), calls("", weather), t("18 C")],
        [u("Weather?"), calls("<think>call</think>", weather), t("18 C"), u("Thanks")],
        # a user turn made of a tool response does not count as the last query
        [u("Weather?"), calls("", weather), u("<tool_response>\n18 C\n</tool_response>"),
         a("<think>got it</think>18 C.")],
        # a late system message is a turn of its own; a tool output first; None where printed
        [u("Hi"), s("Late system."), a("Hello.")],
        [t("first"), u("x")],
        [u("x"), calls("", call(None, None)), t(None)],
        [u("x"), calls(None, weather)],
        # with tools: the system prompt gets the tool list, with or without a system message
        ([s("Be useful."), u("Weather in Paris?")], WEATHER_TOOL),
        ([u("Weather in Paris?")], WEATHER_TOOL),
        ([u("Weather?"), calls("", weather), t("18 C")], WEATHER_TOOL + ""),
        ([u("x")], "[]"),
        ([s(None), u("x")], WEATHER_TOOL),
        ([], WEATHER_TOOL),
    ]


def fixture_conversations(fixtures):
    seen, convs = set(), []
    for sub in ("tokenizer-deepseek-v3", "tokenizer-tiny"):
        with open(os.path.join(fixtures, sub, "chat.jsonl"), encoding="utf-8") as f:
            for line in f:
                msgs = json.loads(line)["messages"]
                key = json.dumps(msgs, sort_keys=True)
                if key not in seen:
                    seen.add(key)
                    convs.append(msgs)
    return convs


def render_rows(template, conversations, thinking=(None,), switch="thinking", bos=BOS, eos=EOS):
    """Rows for each conversation, add_generation_prompt and thinking (None: not passed), the
    template reading thinking as the variable named switch. A conversation is a message list or
    a (messages, tools) pair, tools as JSON text (a "tools" key in the row)."""
    tmpl = environment().from_string(template)
    rows = []
    for conv in conversations:
        msgs, tools = conv if isinstance(conv, tuple) else (conv, None)
        for think in thinking:
            for agp in (True, False):
                extra = {} if think is None else {switch: think}
                if tools is not None:
                    extra["tools"] = json.loads(tools)
                try:
                    text = tmpl.render(messages=msgs, add_generation_prompt=agp, bos_token=bos,
                                       eos_token=eos, pad_token=eos, **extra)
                except Exception:  # noqa: BLE001 - any template error means "cannot render"
                    text = None
                row = {"messages": msgs, "add_generation_prompt": agp}
                if think is not None:
                    row["thinking"] = think
                if tools is not None:
                    row["tools"] = tools
                rows.append({**row, "text": text})
    return rows


def with_object_arguments(msgs):
    """msgs with each tool call's arguments parsed, as llama.cpp hands them to a template."""
    def parsed(c):
        f = dict(c["function"])
        if isinstance(f.get("arguments"), str):
            f["arguments"] = json.loads(f["arguments"])
        return {**c, "function": f}
    return [{**m, "tool_calls": [parsed(c) for c in m["tool_calls"]]} if m.get("tool_calls") else m
            for m in msgs]


def compare_llama_cpp_v31(rows):
    """How llama.cpp's edited copy of the V3.1 template renders the same rows."""
    with open(os.path.join(HERE, "llama.cpp-deepseek-v3.1.jinja"), encoding="utf-8") as f:
        tmpl = environment().from_string(f.read())
    same = differ = 0
    for r in rows:
        try:
            text = tmpl.render(messages=with_object_arguments(r["messages"]), bos_token=BOS,
                               add_generation_prompt=r["add_generation_prompt"],
                               thinking=r["thinking"], eos_token=EOS)
        except Exception:  # noqa: BLE001
            text = None
        same += text == r["text"]
        differ += text != r["text"]
    print(f"llama.cpp's V3.1 copy: {same} rows as DeepSeek's template, {differ} different")


def compare_llama_cpp_distill(rows):
    """How llama.cpp's reformatted copy of the R1 distills' template renders the same rows."""
    with open(os.path.join(HERE, "llama.cpp-deepseek-r1-distill-llama-8b.jinja"), encoding="utf-8") as f:
        tmpl = environment().from_string(f.read())
    differ = 0
    for r in rows:
        try:
            text = tmpl.render(messages=r["messages"], add_generation_prompt=r["add_generation_prompt"],
                               bos_token=BOS, eos_token=EOS)
        except Exception:  # noqa: BLE001
            text = None
        differ += text != r["text"]
    print(f"llama.cpp's R1-Distill-Llama-8B copy: {len(rows) - differ} rows as DeepSeek's template, {differ} different")


def template(name):
    with open(os.path.join(HERE, name), encoding="utf-8") as f:
        return f.read()


def write_rows(name, rows):
    with open(os.path.join(HERE, name), "w", encoding="utf-8", newline="\n") as f:
        for r in rows:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")
    print(f"{name}: {len(rows)} rows, {sum(r['text'] is None for r in rows)} errors")


def main():
    fixtures = sys.argv[1]
    with open(os.path.join(fixtures, "tokenizer-deepseek-v3", "tokenizer_config.json"),
              encoding="utf-8") as f:
        v3 = json.load(f)["chat_template"]
    convs = fixture_conversations(fixtures) + extra_conversations()
    for style in ("deepseek-r1", "deepseek-v2"):
        with open(os.path.join(HERE, style + ".jinja"), encoding="utf-8") as f:
            write_rows(style + ".jsonl", render_rows(f.read(), convs))
    # V3's own fixtures cover the common cases; these add its quirks on the extra conversations
    write_rows("deepseek-v3.jsonl", render_rows(v3, extra_conversations()))
    with open(os.path.join(HERE, "deepseek-v3.1.jinja"), encoding="utf-8") as f:
        v31 = render_rows(f.read(), convs + v31_conversations(), thinking=(False, True))
    write_rows("deepseek-v3.1.jsonl", v31)
    compare_llama_cpp_v31(v31)
    distill = render_rows(template("deepseek-r1-distill.jinja"), convs + v31_conversations())
    write_rows("deepseek-r1-distill.jsonl", distill)
    compare_llama_cpp_distill(distill)
    # DeepSeek Coder's EOS is <|EOT|>, which its template also writes as text
    write_rows("deepseek-coder.jsonl", render_rows(template("deepseek-coder.jinja"), convs, eos="<|EOT|>"))
    # Qwen3 has no BOS (bos_token None) and ends turns with <|im_end|>
    write_rows("qwen3.jsonl", render_rows(template("qwen3.jinja"), convs + v31_conversations() + qwen3_conversations(),
                                          thinking=(None, False, True), switch="enable_thinking", bos=None,
                                          eos="<|im_end|>"))
    write_rows("chatml.jsonl", render_rows(template("llama.cpp-chatml.jinja"), convs))


if __name__ == "__main__":
    main()
