"""dcmtk's findscu for a cell that stored its object first: the query by that object's own study, and what the
answer must show (that study). The argv keeps the store's options (TLS, AE titles, timeouts), so the query goes
through the same path as the store did. (dcmtk's movescu and getscu have no TLS options: a C-MOVE over TLS is not
a dcmtk cell.)"""

from __future__ import annotations

import re
from pathlib import Path

from dicomtls.dicomdata import TestObject

TOOLS = {"C-FIND": "findscu"}
"""The dcmtk tool of each query service it runs over TLS."""
_ANSWERED_STUDY = re.compile(r"\(0020,000d\) UI \[(?P<uid>[0-9.]+)[\s\x00]*\]")  # an odd-length UID ends in a NUL
_FINAL_SUCCESS = re.compile(r"Received Final Find Response \(Success\)")


def query_argv(store_argv: list[str], tool: Path, sent: TestObject) -> list[str]:
    """``tool`` with the store's options and address (``store_argv``: storescu's, its file last), asking for the
    sent object's study and the keys an answer must return."""
    options, address = store_argv[1:-3], store_argv[-3:-1]
    keys = ["-S", "-k", "QueryRetrieveLevel=STUDY", "-k", f"StudyInstanceUID={sent.study_instance_uid}",
            "-k", "PatientID", "-k", "NumberOfStudyRelatedInstances"]
    return [str(tool), *options, *keys, *address]


def answered_studies(output: str) -> list[str]:
    """The StudyInstanceUIDs of findscu's answers (the request's own echo of the key comes first and is skipped)."""
    answers = output.split("Find Response:", 1)
    return [m["uid"] for m in _ANSWERED_STUDY.finditer(answers[1])] if len(answers) == 2 else []


def find_problem(output: str, sent: TestObject) -> str | None:
    """Why findscu's answer does not show the stored study, or None when it does."""
    if not _FINAL_SUCCESS.search(output):
        return "findscu got no final success"
    studies = answered_studies(output)
    if sent.study_instance_uid not in studies:
        return f"C-FIND answered {len(studies)} studies, none the stored study {sent.study_instance_uid}"
    return None
