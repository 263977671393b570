# -*- coding: utf-8 -*-
# Shipped with `pipeline` (src/ansible/pipeline_events.py) and written next to every run it starts.
# It turns Ansible's callback events into one JSON object per line on stdout, which `pipeline` reads
# for its live progress and its deploy report. It needs nothing beyond ansible-core.
from __future__ import annotations

DOCUMENTATION = """
    name: pipeline_events
    type: stdout
    short_description: one JSON object per event and line, for the pipeline tool
    description:
      - Writes play, task, per-host result, retry and stats events as JSON lines on stdout.
      - Results of tasks with no_log arrive already censored by Ansible; long fields are truncated.
"""

import json
import sys
import time

from ansible.plugins.callback import CallbackBase

# Longest text field (message, stdout, stderr) copied into an event.
MAX_TEXT = 2000
TEXT_FIELDS = ("msg", "censored", "stderr", "stdout", "module_stderr", "module_stdout", "exception")


def _text(value):
    if value is None:
        return None
    if not isinstance(value, str):
        value = json.dumps(value, default=str)
    value = value.strip()
    if len(value) > MAX_TEXT:
        value = "..." + value[-MAX_TEXT:]
    return value or None


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "stdout"
    CALLBACK_NAME = "pipeline_events"

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._host_start = {}

    def _emit(self, event, **fields):
        fields["event"] = event
        fields["time"] = time.time()
        sys.stdout.write(json.dumps(fields, default=str) + "\n")
        sys.stdout.flush()

    @staticmethod
    def _task_fields(task):
        role = task._role.get_name(include_role_fqcn=False) if task._role else None
        name = task.get_name().strip()
        if role and name.startswith(role + " : "):
            name = name[len(role) + 3:]
        return {"task_id": task._uuid, "task": name, "role": role}

    def _result(self, status, result, **extra):
        host = result._host.get_name()
        task = result._task
        started = self._host_start.pop((host, task._uuid), None)
        data = result._result or {}
        fields = self._task_fields(task)
        fields.update(host=host, status=status, changed=bool(data.get("changed", False)))
        fields["duration"] = (time.time() - started) if started is not None else None
        if status in ("failed", "unreachable", "ignored"):
            for key in TEXT_FIELDS:
                text = _text(data.get(key))
                if text is not None and text != "(traceback unavailable)":
                    fields[key] = text
            if isinstance(data.get("rc"), int):
                fields["rc"] = data["rc"]
            items = data.get("results")
            if isinstance(items, list):
                fields["failed_items"] = [
                    {"item": _text(r.get("item")), "msg": _text(r.get("msg") or r.get("stderr"))}
                    for r in items
                    if isinstance(r, dict) and r.get("failed")
                ]
        fields.update(extra)
        self._emit("result", **fields)

    def v2_playbook_on_start(self, playbook):
        self._emit("playbook_start", playbook=playbook._file_name)

    def v2_playbook_on_play_start(self, play):
        self._emit("play_start", play=play.get_name().strip())

    def v2_playbook_on_task_start(self, task, is_conditional):
        self._emit("task_start", handler=False, **self._task_fields(task))

    def v2_playbook_on_handler_task_start(self, task):
        self._emit("task_start", handler=True, **self._task_fields(task))

    def v2_runner_on_start(self, host, task):
        self._host_start[(host.get_name(), task._uuid)] = time.time()

    def v2_runner_on_ok(self, result):
        changed = bool((result._result or {}).get("changed", False))
        self._result("changed" if changed else "ok", result)

    def v2_runner_on_failed(self, result, ignore_errors=False):
        self._result("ignored" if ignore_errors else "failed", result)

    def v2_runner_on_unreachable(self, result):
        self._result("unreachable", result)

    def v2_runner_on_skipped(self, result):
        self._result("skipped", result)

    def v2_runner_retry(self, result):
        data = result._result or {}
        fields = self._task_fields(result._task)
        fields.update(
            host=result._host.get_name(),
            attempt=data.get("attempts"),
            retries=data.get("retries"),
        )
        self._emit("retry", **fields)

    def v2_playbook_on_no_hosts_matched(self):
        self._emit("no_hosts_matched")

    def v2_playbook_on_stats(self, stats):
        hosts = {}
        for host in sorted(stats.processed.keys()):
            hosts[host] = stats.summarize(host)
        self._emit("stats", hosts=hosts)
