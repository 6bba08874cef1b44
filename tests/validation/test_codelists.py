"""Code lists: the committed data equals what the real schemas give, and the codes real documents use are there."""

from __future__ import annotations

import functools
import importlib.util
import json
import re
import sys
from pathlib import Path

import pytest

from hub.standards import PROJECT_ROOT
from hub.codelists import (
    CODE_LIST_DIR,
    CodeList,
    UnknownCodeError,
    UnknownCodeListError,
    available_lists,
    load_code_list,
)
from tests.support.standards import standard_file

EXPECTED_LISTS = ("ISO3166", "ISO639", "Rec19", "Rec20", "Rec21", "UNCL1001", "UNCL3035", "UNCL4405")


@functools.cache
def build_codelists():
    """scripts/build_codelists.py as a module, loaded when a test first asks (never at import)."""
    path = PROJECT_ROOT / "scripts" / "build_codelists.py"
    spec = importlib.util.spec_from_file_location("build_codelists", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is built
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def generated(standards: Path) -> dict[str, str]:
    tree = standards / build_codelists().SCHEMA_TREE
    if not tree.is_dir():
        pytest.fail(f"UN/CEFACT D17A schemas not found at {tree} (set HUB_STANDARDS_DIR)")
    return build_codelists().build_all(standards)


# --- the data cannot drift from the schemas -------------------------------------------------------------------------


def test_generator_makes_exactly_the_expected_lists(generated):
    assert sorted(generated) == [f"{list_id}.json" for list_id in EXPECTED_LISTS]
    assert available_lists() == EXPECTED_LISTS


@pytest.mark.parametrize("file_name", [f"{list_id}.json" for list_id in EXPECTED_LISTS])
def test_committed_file_equals_what_the_script_generates(generated, file_name):
    committed = CODE_LIST_DIR / file_name
    assert committed.is_file(), f"{committed} missing: run python scripts/build_codelists.py"
    assert committed.read_text(encoding="utf-8") == generated[file_name], (
        f"{committed} differs from the schemas: run python scripts/build_codelists.py"
    )


def test_check_mode_passes_on_committed_files_and_fails_on_stale_ones(standards, tmp_path, capsys):
    assert build_codelists().main(["--check", "--standards", str(standards)]) == 0
    (tmp_path / "Rec19.json").write_text("{}", encoding="utf-8")
    assert build_codelists().main(["--check", "--standards", str(standards), "--out", str(tmp_path)]) == 1
    assert "differs" in capsys.readouterr().err


def test_script_writes_files_it_would_then_accept(standards, tmp_path):
    assert build_codelists().main(["--standards", str(standards), "--out", str(tmp_path)]) == 0
    assert build_codelists().main(["--check", "--standards", str(standards), "--out", str(tmp_path)]) == 0


def test_missing_standards_folder_is_reported_with_its_path(tmp_path, capsys):
    assert build_codelists().main(["--check", "--standards", str(tmp_path)]) == 2
    assert str(tmp_path / "uncefact-D17A") in capsys.readouterr().err


def test_every_list_records_its_provenance():
    for list_id in EXPECTED_LISTS:
        data = json.loads((CODE_LIST_DIR / f"{list_id}.json").read_text(encoding="utf-8"))
        assert data["list"] == list_id
        assert data["derived_by"] == "scripts/build_codelists.py"
        assert data["source"] and all(name.endswith(".xsd") for name in data["source"])


def test_list_metadata():
    documents = load_code_list("UNCL1001")
    assert (documents.title, documents.agency, documents.version) == ("Document name code", "UNECE", "D16B")
    assert documents.source == ("UNECE_DocumentNameCode_D16B.xsd",)
    assert load_code_list("UNCL4405").source == ("UNECE_StatusCode_D16B.xsd",)
    assert load_code_list("UNCL3035").source == ("UNECE_PartyRoleCode_D16B.xsd",)
    assert load_code_list("Rec19").version == "2"
    assert load_code_list("Rec21").version == "2006"
    assert load_code_list("ISO3166").agency == "ISO"
    assert len(load_code_list("Rec20").source) == 7  # Weight, Volume, Duration, Temperature, Linear, Airflow, FileSize


# --- well-known codes ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("list_id", "code", "name"),
    [
        ("UNCL1001", "851", "Phytosanitary certificate"),
        ("UNCL1001", "657", "Phytosanitary Re-export Certificate"),
        ("UNCL1001", "636", "Health certificate"),
        ("UNCL1001", "853", "Veterinary certificate"),
        ("UNCL1001", "856", "Inspection certificate"),
        ("UNCL4405", "70", "Issued"),
        ("UNCL4405", "40", "Withdrawn"),
        ("UNCL4405", "44", "Replaced"),
        ("UNCL4405", "41", "Rejected"),
        ("UNCL4405", "39", "Approved"),
        ("UNCL4405", "47", "Draft version"),
        ("UNCL4405", "1", "To be done"),
        ("Rec19", "1", "Maritime transport"),
        ("Rec19", "3", "Road transport"),
        ("Rec19", "4", "Air transport"),
        ("ISO3166", "FR", "FRANCE"),
        ("ISO3166", "EC", "ECUADOR"),
        ("ISO3166", "AR", "ARGENTINA"),
        ("ISO3166", "US", "UNITED STATES OF AMERICA"),
        ("ISO639", "en", "English"),
        ("ISO639", "fr", "French"),
        ("ISO639", "la", "Latin"),
        ("ISO639", "nn", "Norwegian Nynorsk; Nynorsk, Norwegian"),
        ("ISO639", "no", "Norwegian"),
        ("ISO639", "EN", "English"),  # the schema enumerates upper case too; the CITES EPIX sample uses languageID="EN"
        ("Rec20", "KGM", "kilogram"),
        ("Rec20", "MTQ", "cubic metre"),
        ("Rec20", "CEL", "degree Celsius"),
        ("Rec20", "HUR", "hour"),
        ("Rec20", "H87", "piece"),
        ("Rec20", "KX", "millilitre per kilogram"),
        ("Rec21", "BG", "Bag"),
        ("Rec21", "BX", "Box"),
        ("Rec21", "CT", "Carton"),
        ("UNCL3035", "CZ", "Consignor"),
        ("UNCL3035", "CN", "Consignee"),
    ],
)
def test_well_known_code(list_id, code, name):
    code_list = load_code_list(list_id)
    assert code in code_list
    assert code_list.name_of(code) == name


def test_descriptions_are_kept():
    assert load_code_list("UNCL1001").codes["851"].description.startswith("A message/doucment consistent with the model")
    assert load_code_list("Rec21").codes["BG"].description is None


def test_names_have_no_stray_whitespace():
    for list_id in EXPECTED_LISTS:
        for entry in load_code_list(list_id).codes.values():
            assert entry.name == " ".join(entry.name.split()), (list_id, entry.code)


# --- UNCL 4405 is not 1373, nor Rec 24 -------------------------------------------------------------------------------


def test_status_codes_are_4405_not_document_status_1373():
    schema = build_codelists().read_schema(standard_file("uncefact-D17A/codelist/standard/UNECE_DocumentStatusCode_D16B.xsd"))
    document_status = {code: name for code, name, _ in schema.codes}
    assert document_status["39"] == "On hold"
    assert document_status["8"] == "Rejected"
    statuses = load_code_list("UNCL4405")
    assert statuses.name_of("39") == "Approved"
    assert statuses.name_of("8") != "Rejected"
    assert "70" not in document_status and statuses.name_of("70") == "Issued"


def test_rec24_transport_statuses_sharing_the_schema_are_left_out():
    schema = build_codelists().read_schema(standard_file("uncefact-D17A/codelist/standard/UNECE_StatusCode_D16B.xsd"))
    rec24 = {code: name for code, name, desc in schema.codes if (desc or "").startswith(build_codelists().REC24_MARKER)}
    assert (rec24["70"], rec24["1"]) == ("Ramped equipment", "Arrival, completed")
    statuses = load_code_list("UNCL4405")
    assert (statuses.name_of("70"), statuses.name_of("1")) == ("Issued", "To be done")
    assert len(statuses) == len(schema.codes) - len(rec24)


# --- supplements --------------------------------------------------------------------------------------------------


def _supplements() -> dict:
    return json.loads((CODE_LIST_DIR / "supplements.json").read_text(encoding="utf-8"))["lists"]


def test_supplements_are_flagged_and_derived_codes_are_not():
    units = load_code_list("Rec20")
    assert units.codes["H87"].supplement and units.codes["KX"].supplement
    assert "TRACES" in units.codes["H87"].note
    assert not units.codes["KGM"].supplement
    assert not any(entry.supplement for entry in load_code_list("UNCL1001").codes.values())


def test_each_supplement_is_needed_and_used_by_a_real_document(generated, standards):
    for list_id, entries in _supplements().items():
        assert list_id in available_lists(), f"supplements.json names unknown list {list_id}"
        derived = json.loads(generated[f"{list_id}.json"])["codes"]
        for code, entry in entries.items():
            assert code not in derived, f"{list_id} {code} is now in the schemas: drop it from supplements.json"
            assert entry["name"] and entry["why"] and entry["source"] and entry["used_by"]
            for relative in entry["used_by"]:
                text = standard_file(relative).read_text(encoding="utf-8")
                assert re.search(rf"[\"'>]{re.escape(code)}[\"'<]", text), f"{relative} does not use {code}"


def test_sample_codes_are_all_covered():
    """Units, package types and languages seen in the real ePhyto and TRACES samples are all known."""
    assert {"KGM", "MTQ", "CEL", "KX", "HUR", "H87"} <= set(load_code_list("Rec20"))
    assert {"BG", "BX", "CT"} <= set(load_code_list("Rec21"))
    assert {"en", "nn", "no", "la"} <= set(load_code_list("ISO639"))


# --- the loader -----------------------------------------------------------------------------------------------------


def test_unknown_list_raises_a_clear_key_error():
    with pytest.raises(KeyError) as caught:
        load_code_list("UNCL9999")
    assert isinstance(caught.value, UnknownCodeListError)
    assert "UNCL9999" in str(caught.value) and "UNCL1001" in str(caught.value)


def test_list_ids_cannot_reach_outside_the_folder():
    with pytest.raises(UnknownCodeListError):
        load_code_list("../pyproject")


def test_unknown_code_names_code_and_list():
    with pytest.raises(UnknownCodeError, match=r"'999999' is not in UNCL1001"):
        load_code_list("UNCL1001").name_of("999999")


def test_lists_are_cached_and_read_only():
    statuses = load_code_list("UNCL4405")
    assert load_code_list("UNCL4405") is statuses
    assert isinstance(statuses, CodeList)
    with pytest.raises(TypeError):
        statuses.codes["999"] = statuses.codes["70"]  # type: ignore[index]
    with pytest.raises(AttributeError):
        statuses.version = "D99A"  # type: ignore[misc]
    assert 70 not in statuses  # codes are strings, as they appear in XML
