"""``llm_cleaning`` (on / off / auto) and ``cleaning.json``, which tells every table caption
whether the reports were rule-cleaned or LLM-cleaned (issue 22 item 2)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from unixlib.data.processed import DataPaths, cleaning_note, save_cleaning_note
from unixlib.data.text.llm_clean import LLMError, llm_config


def test_llm_cleaning_modes() -> None:
    assert llm_config("auto", "", "") is None  # rules only: nothing configured
    cfg = llm_config("auto", "http://x/v1", "deepseek-chat", "KEY_ENV")
    assert (cfg.base_url, cfg.model, cfg.api_key_env) == ("http://x/v1", "deepseek-chat", "KEY_ENV")
    assert llm_config("on", "http://x/v1", "deepseek-chat").model == "deepseek-chat"
    assert llm_config("off", "http://x/v1", "deepseek-chat") is None  # configured, not used
    with pytest.raises(LLMError, match=r"llm_cleaning=off for rule cleaning"):
        llm_config("on", "", "")
    with pytest.raises(LLMError, match="no endpoint"):
        llm_config("on", "http://x/v1", "")  # a model is part of the endpoint
    with pytest.raises(ValueError, match="llm_cleaning must be one of"):
        llm_config("yes", "", "")


def test_cleaning_note_says_what_cleaned_the_reports(tmp_path: Path) -> None:
    paths = DataPaths(tmp_path)
    note = save_cleaning_note(paths, None, ["rules", "rules", "relaxed:labels", "rejected:empty"])
    assert note["caption"] == "rule-cleaned"
    assert note["status_counts"] == {"rules": 2, "relaxed": 1, "rejected": 1}
    assert cleaning_note(paths) == note  # read back from cleaning.json
    statuses = ["llm"] * 3 + ["fallback:labels"]
    note = save_cleaning_note(paths, "deepseek-chat", statuses)
    assert note["caption"] == "LLM-cleaned (deepseek-chat; 3 of 4 rows, the rest rule-cleaned)"
    assert save_cleaning_note(paths, "m", ["llm"])["caption"] == "LLM-cleaned (m)"
    # An endpoint that never produced an accepted rewrite cleaned nothing: rule-cleaned.
    assert save_cleaning_note(paths, "m", ["fallback:x"])["caption"] == "rule-cleaned"


def test_a_folder_without_the_note_is_read_from_its_statuses(tmp_path: Path) -> None:
    paths = DataPaths(tmp_path)
    pd.DataFrame({"clean_status": ["rules", "rules"]}).to_parquet(paths.processed)
    assert cleaning_note(paths)["caption"] == "rule-cleaned"
    pd.DataFrame({"clean_status": ["llm", "rules"]}).to_parquet(paths.processed)
    assert cleaning_note(paths)["caption"] == (
        "LLM-cleaned (unknown model; 1 of 2 rows, the rest rule-cleaned)"
    )
