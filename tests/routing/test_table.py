"""The routing table: zones, conditions, union and final, explanations, load errors, the default table, the CLI."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest
from typer.testing import CliRunner

from hub.errors import ConfigurationError, InputError
from hub.mapping.sps_certificate import record_from_data
from hub.families import RoutingFacts, routing_facts
from hub.routing import NoRouteError, RoutingTable, builtin_zones
from hub.cli.routes import routes_app
from hub.standards import PROJECT_ROOT

EXAMPLES = PROJECT_ROOT / "mappings" / "SPSCertificate" / "17" / "examples"
PHYTO_RECORD = EXAMPLES / "phyto-FR-apples.record.json"
CHED_RECORD = EXAMPLES / "ched-P-FR-cheese.record.json"
DEFAULT_ROUTES = PROJECT_ROOT / "config" / "routes.yaml"


def facts(**overrides) -> RoutingFacts:
    values = dict(kind="phytosanitary", status="issued", issuing_country="FR", exporting_country="FR",
                  importing_country="US", hs_codes=("080810",))
    return RoutingFacts(**{**values, **overrides})


def table(*rules: dict, zones: dict | None = None, source: str = "config/routes.yaml") -> RoutingTable:
    data: dict = {"rules": list(rules)}
    if zones is not None:
        data["zones"] = zones
    return RoutingTable.from_data(data, source=source)


def rule(name: str, to: list[str], **when) -> dict:
    return {"name": name, "when": when, "to": to}


def record(path: Path, **changes):
    data = json.loads(path.read_text(encoding="utf-8"))
    data.update(changes)
    return record_from_data(data)


# --- zones -------------------------------------------------------------------------------------------------------


def test_builtin_zones_resolve_to_their_members():
    zones = builtin_zones()
    eu = zones["EU"].members
    assert len(eu) == 27
    assert {"FR", "DE", "GR", "HR", "IE"} <= eu
    assert not {"GB", "CH", "NO", "EL"} & eu
    assert zones["EFTA"].members == {"CH", "IS", "LI", "NO"}
    assert zones["EEA"].members == eu | {"IS", "LI", "NO"} and "CH" not in zones["EEA"].members
    assert zones["EAEU"].members == {"AM", "BY", "KG", "KZ", "RU"}
    assert zones["GCC"].members == {"AE", "BH", "KW", "OM", "QA", "SA"}
    assert zones["SACU"].members == {"BW", "LS", "NA", "SZ", "ZA"}
    assert {"TL", "VN", "SG"} <= zones["ASEAN"].members and len(zones["ASEAN"].members) == 11
    assert "VE" not in zones["MERCOSUR"].members and {"AR", "BR", "PY", "UY"} <= zones["MERCOSUR"].members
    assert zones["EU"].label == "EU (27 countries)"


def test_zone_in_a_rule_matches_its_members_only():
    t = table(rule("eu", ["x"], importing_country=["EU"]))
    assert t.route(facts(importing_country="DE")).destinations == ["x"]
    assert t.route(facts(importing_country="GB")).destinations == []
    assert t.route(facts(importing_country=None)).destinations == []


def test_routing_file_zones_add_and_override():
    t = table(
        rule("nordic", ["n"], importing_country=["NORDIC"]),
        rule("eea", ["e"], importing_country=["EEA"]),
        zones={"NORDIC": {"title": "Nordic countries", "members": ["DK", "FI", "IS", "NO", "SE"]}, "EU": ["FR", "DE"]},
    )
    assert t.zones["NORDIC"].members == {"DK", "FI", "IS", "NO", "SE"}
    assert t.zones["EU"].members == {"FR", "DE"}
    # EEA names EU, so overriding EU changes EEA too.
    assert t.zones["EEA"].members == {"FR", "DE", "IS", "LI", "NO"}
    assert t.route(facts(importing_country="NO")).destinations == ["n", "e"]
    assert t.route(facts(importing_country="IT")).destinations == []
    assert len(builtin_zones()["EU"].members) == 27, "a routing file's zones must not change the built-in ones"


# --- conditions --------------------------------------------------------------------------------------------------


def test_negations():
    outside_eu = table(rule("r", ["x"], importing_country=["!EU"]))
    assert outside_eu.route(facts(importing_country="US")).matched == ["r"]
    assert outside_eu.route(facts(importing_country="FR")).matched == []
    eea_but_norway = table(rule("r", ["x"], importing_country=["EEA", "!NO"]))
    assert eea_but_norway.route(facts(importing_country="IS")).matched == ["r"]
    assert eea_but_norway.route(facts(importing_country="NO")).matched == []
    assert eea_but_norway.route(facts(importing_country="CH")).matched == []
    not_france = table(rule("r", ["x"], exporting_country=["!FR", "!DE"]))
    assert not_france.route(facts(exporting_country="IT")).matched == ["r"]
    assert not_france.route(facts(exporting_country="DE")).matched == []


def test_kind_status_and_cross_border():
    t = table(
        rule("vet", ["v"], kind=["veterinary"]),
        rule("withdrawn", ["w"], status=["withdrawn", "replaced"]),
        rule("abroad", ["a"], cross_border=True),
        rule("domestic", ["d"], cross_border=False),
    )
    assert t.route(facts(kind="veterinary")).destinations == ["v", "a"]
    assert t.route(facts(status="replaced")).destinations == ["w", "a"]
    assert t.route(facts(importing_country="FR")).destinations == ["d"]
    assert t.route(facts(importing_country=None)).destinations == []


def test_hs_prefix_matches_any_code_of_the_document():
    t = table(rule("dairy", ["d"], hs_prefix=["0406", "0401"]))
    assert t.route(facts(hs_codes=("080810", "04069021"))).matched == ["dairy"]
    assert t.route(facts(hs_codes=("0406.90",))).matched == ["dairy"]
    assert t.route(facts(hs_codes=("080810",))).matched == []
    assert t.route(facts(hs_codes=())).matched == [], "a rule with hs_prefix never matches a document without HS codes"
    assert table(rule("any", ["d"])).route(facts(hs_codes=())).matched == ["any"]


def test_every_matching_rule_adds_its_destinations_in_order_without_duplicates():
    t = table(
        rule("first", ["a", "b"], kind=["phytosanitary"]),
        rule("skipped", ["z"], kind=["ched"]),
        rule("second", ["c", "a"], importing_country=["US"]),
    )
    routing = t.route(facts())
    assert routing.destinations == ["a", "b", "c"]
    assert routing.matched == ["first", "second"]
    assert t.destinations == {"a", "b", "c", "z"}


def test_final_stops_evaluation_once_it_matches():
    t = table(
        {"name": "us-only", "when": {"importing_country": ["US"]}, "to": ["us"], "final": True},
        rule("everyone", ["all"]),
    )
    assert t.route(facts(importing_country="US")).destinations == ["us"]
    assert t.route(facts(importing_country="CA")).destinations == ["all"], "a final rule that does not match stops nothing"
    skipped = t.explain(facts(importing_country="US"))[1]
    assert not skipped.matched
    assert skipped.reasons == ["not evaluated: final rule 'us-only' matched before it"]


def test_explain_says_why_each_rule_matched_or_failed():
    t = table(
        rule("eu", ["x"], importing_country=["EU"], kind=["phytosanitary"]),
        rule("apples", ["y"], hs_prefix=["0808"], importing_country=["!EU"]),
        rule("catch-all", ["z"]),
    )
    eu, apples, catch_all = t.explain(facts(importing_country="US"))
    assert (eu.matched, eu.reasons) == (False, ["importing_country US is not in EU (27 countries)"])
    assert eu.destinations == ["x"]
    assert apples.matched
    assert apples.reasons == ["HS code 080810 starts with 0808", "importing_country US is not excluded by !EU (27 countries)"]
    assert catch_all.reasons == ["no conditions: matches every document"]
    refused = t.explain(facts(importing_country="FR", hs_codes=()))[1]
    assert refused.reasons == [
        "the document has no HS codes (hs_prefix 0808)",
        "importing_country FR is excluded by !EU (27 countries)",
    ]


# --- load errors -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"rules": [rule("phyto-p2p", ["x"], importing_country=["EUU"])]},
         "config/routes.yaml: rule 'phyto-p2p': unknown zone 'EUU' in importing_country (did you mean 'EU'?)"),
        ({"rules": [rule("r", ["x"], exporting_country=["XX"])]},
         "config/routes.yaml: rule 'r': unknown country code 'XX' in exporting_country"),
        ({"rules": [rule("r", ["x"], importing_country=["UK"])]}, "the United Kingdom is GB"),
        ({"rules": [rule("r", ["x"], importing_country=["fr"])]}, "rule 'r': country code 'fr' in importing_country must be upper case"),
        ({"rules": [rule("r", ["x"], importing_country=[False])]}, "write Norway as \"NO\" in quotes"),
        ({"rules": [rule("r", ["x"], importing_country=[])]}, "rule 'r': importing_country must be a non-empty list"),
        ({"rules": [rule("r", ["x"], kind=["phyto"])]},
         "config/routes.yaml: rule 'r': unknown kind 'phyto' in kind (did you mean 'phytosanitary'?)"),
        ({"rules": [rule("r", ["x"], kind=["veterinay"])]}, "did you mean 'veterinary'?"),
        ({"rules": [rule("r", ["x"], status=["issue"])]}, "rule 'r': unknown status 'issue' in status (did you mean 'issued'?)"),
        ({"rules": [rule("r", ["x"], hs_prefix=[808])]}, "rule 'r': hs_prefix 808 must be a quoted string"),
        ({"rules": [rule("r", ["x"], hs_prefix=["08.08"])]}, "rule 'r': hs_prefix '08.08' is not a string of digits"),
        ({"rules": [rule("r", ["x"], importing="FR")]}, "rule 'r': unknown condition 'importing' in when"),
        ({"rules": [rule("r", ["x"], cross_border="yes")]}, "rule 'r': cross_border must be true or false"),
        ({"rules": [{"name": "r", "to": ["x"], "destinations": ["y"]}]}, "config/routes.yaml: rule 'r': unknown key 'destinations'"),
        ({"rules": [rule("r", ["x"])], "zone": {}}, "config/routes.yaml: unknown key 'zone' (did you mean 'zones'?)"),
        ({"rules": [rule("a", ["x"]), rule("b", ["y"]), rule("a", ["z"])]},
         "config/routes.yaml: rule 'a': duplicate rule name (rules #1 and #3)"),
        ({"rules": [rule("r", [])]}, "config/routes.yaml: rule 'r': to must be a non-empty list of destination names"),
        ({"rules": [{"name": "r"}]}, "config/routes.yaml: rule 'r': to must be a non-empty list"),
        ({"rules": [{"to": ["x"]}]}, "config/routes.yaml: rule #1: a rule needs a name"),
        ({"rules": [{"name": "r", "to": ["x"], "final": "yes"}]}, "rule 'r': final must be true or false"),
        ({"rules": []}, "config/routes.yaml: rules must be a non-empty list"),
        ({"rules": [rule("r", ["x"])], "zones": {"NORDIC": ["DK", "XX"]}},
         "config/routes.yaml: zone 'NORDIC': unknown country code 'XX' in members"),
        ({"rules": [rule("r", ["x"])], "zones": {"A": ["B"], "B": ["A"]}}, "contains itself through"),
        ({"rules": [rule("r", ["x"])], "zones": {"FR": ["FR"]}}, "zone 'FR': a zone cannot be named like the ISO 3166 country code"),
    ],
)
def test_load_errors_name_the_file_the_rule_and_the_problem(data, message):
    with pytest.raises(ConfigurationError) as caught:
        RoutingTable.from_data(data, source="config/routes.yaml")
    assert message in str(caught.value)


def test_kinds_beyond_sps_are_accepted():
    t = table(rule("cites", ["cites_p2p"], kind=["cites_export", "cites_reexport"]))
    assert t.route(facts(kind="cites_reexport")).destinations == ["cites_p2p"]
    assert t.route(facts(kind="phytosanitary")).destinations == []


def test_load_names_the_file_for_unreadable_and_unknown_formats(tmp_path):
    with pytest.raises(ConfigurationError, match="missing.yaml: cannot read the routing table"):
        RoutingTable.load(tmp_path / "missing.yaml")
    (tmp_path / "routes.json").write_text("{}")
    with pytest.raises(ConfigurationError, match=r"routes.json: a routing table is a \.yaml, \.yml or \.toml file"):
        RoutingTable.load(tmp_path / "routes.json")
    (tmp_path / "broken.yaml").write_text("rules: [\n")
    with pytest.raises(ConfigurationError, match="broken.yaml: not a readable routing table"):
        RoutingTable.load(tmp_path / "broken.yaml")


def test_yaml_bare_no_is_reported_as_norway(tmp_path):
    path = tmp_path / "routes.yaml"
    path.write_text("rules:\n  - name: norway\n    when: {importing_country: [NO]}\n    to: [x]\n")
    with pytest.raises(ConfigurationError, match=r"routes.yaml: rule 'norway': False in importing_country is not a country code"):
        RoutingTable.load(path)


def test_toml_and_yaml_load_the_same_table(tmp_path):
    yaml_file = tmp_path / "routes.yaml"
    yaml_file.write_text(textwrap.dedent("""\
        zones:
          NORDIC: [DK, FI, IS, "NO", SE]
        rules:
          - name: nordic-phyto
            when:
              kind: [phytosanitary]
              importing_country: [NORDIC, "!IS"]
              hs_prefix: ["0808"]
            to: [foreign_authority]
            final: true
          - name: everything
            to: [customs]
        """))
    toml_file = tmp_path / "routes.toml"
    toml_file.write_text(textwrap.dedent("""\
        [zones]
        NORDIC = ["DK", "FI", "IS", "NO", "SE"]

        [[rules]]
        name = "nordic-phyto"
        to = ["foreign_authority"]
        final = true
        [rules.when]
        kind = ["phytosanitary"]
        importing_country = ["NORDIC", "!IS"]
        hs_prefix = ["0808"]

        [[rules]]
        name = "everything"
        to = ["customs"]
        """))
    from_yaml, from_toml = RoutingTable.load(yaml_file), RoutingTable.load(toml_file)
    assert from_toml.source.endswith("routes.toml")
    assert from_yaml.zones["NORDIC"] == from_toml.zones["NORDIC"]
    assert [(r.name, r.destinations, r.final, [(c.field, c.written) for c in r.conditions]) for r in from_yaml.rules] == [
        (r.name, r.destinations, r.final, [(c.field, c.written) for c in r.conditions]) for r in from_toml.rules
    ]
    for case in (facts(importing_country="NO"), facts(importing_country="IS"), facts(importing_country="NO", hs_codes=())):
        assert from_yaml.route(case) == from_toml.route(case)
    assert from_toml.route(facts(importing_country="NO")).destinations == ["foreign_authority"]
    assert from_toml.route(facts(importing_country="IS")).destinations == ["customs"]


# --- facts, the default table, NoRouteError --------------------------------------------------------------------


def test_facts_from_records():
    phyto = routing_facts(record(PHYTO_RECORD))
    assert phyto == RoutingFacts(kind="phytosanitary", status="issued", issuing_country="FR", exporting_country="FR",
                                 importing_country="EC", hs_codes=("080810",))
    ched = routing_facts(record(CHED_RECORD))
    assert (ched.kind, ched.exporting_country, ched.importing_country) == ("ched", "CH", "FR")
    assert ched.issuing_country == "FR", "a CHED is issued in the member state of entry, not the exporting country"
    assert ched.hs_codes and ched.hs_codes[0].startswith("0406")
    issued_by_nl = routing_facts(record(PHYTO_RECORD, issuer={"name": "NVWA", "address": {"country_id": "NL"}}))
    assert (issued_by_nl.issuing_country, issued_by_nl.exporting_country) == ("NL", "FR")


def test_default_table_routes_the_worked_examples():
    default = RoutingTable.load(DEFAULT_ROUTES)
    assert default.destinations == {"foreign_authority", "customs", "ephyto_hub", "traces_nt", "single_window", "as4_authority"}
    assert default.require_route(routing_facts(record(PHYTO_RECORD))).destinations == ["foreign_authority", "customs"]
    assert default.route(routing_facts(record(PHYTO_RECORD, status="withdrawn"))).destinations == [
        "foreign_authority", "customs"]
    assert default.require_route(routing_facts(record(CHED_RECORD))).destinations == ["traces_nt", "customs"]
    # A veterinary certificate from Spain to Morocco: the foreign authority, but not French customs.
    assert default.route(facts(kind="veterinary", exporting_country="ES", importing_country="MA")).destinations == [
        "foreign_authority"]
    # Phytosanitary certificates for NPPOs on the ePhyto Hub go through it, and only through it; veterinary ones do not.
    assert default.route(facts(kind="phytosanitary", exporting_country="FR", importing_country="US")).destinations == [
        "ephyto_hub", "customs"]
    assert default.route(facts(kind="veterinary", exporting_country="FR", importing_country="US")).destinations == [
        "foreign_authority", "customs"]
    # CITES export permits and re-export certificates go point-to-point to the importing management authority.
    assert default.route(facts(kind="cites_reexport", exporting_country="FR", importing_country="JP")).destinations == ["foreign_authority"]
    # Peru's single window takes phytosanitary certificates; veterinary ones still go point-to-point.
    assert default.route(facts(kind="phytosanitary", exporting_country="FR", importing_country="PE")).destinations == [
        "single_window", "customs"]
    assert default.route(facts(kind="veterinary", exporting_country="FR", importing_country="PE")).destinations == [
        "foreign_authority", "customs"]
    # Japan's authority is behind an eDelivery AS4 access point: certificates go there, CITES permits still point-to-point.
    for kind in ("phytosanitary", "veterinary"):
        assert default.route(facts(kind=kind, exporting_country="FR", importing_country="JP")).destinations == ["as4_authority", "customs"]


def test_no_route_error_names_the_facts():
    default = RoutingTable.load(DEFAULT_ROUTES)
    domestic = facts(exporting_country="DE", importing_country="DE", issuing_country="DE", hs_codes=("0406", "0808"))
    with pytest.raises(NoRouteError) as caught:
        default.require_route(domestic)
    error = caught.value
    assert isinstance(error, InputError)
    assert error.facts == domestic
    assert str(error) == (
        "no rule of the routing table matched the document (kind phytosanitary, status issued, issuing_country DE, "
        "exporting_country DE, importing_country DE, HS codes 0406, 0808, outbound)"
    )
    assert "no HS codes" in str(NoRouteError(facts(hs_codes=())))


# --- the CLI -----------------------------------------------------------------------------------------------------


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


def test_cli_explain_a_record_json(runner, monkeypatch):
    monkeypatch.delenv("HUB_ROUTES", raising=False)
    result = runner.invoke(routes_app, ["explain", str(PHYTO_RECORD)])
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert str(DEFAULT_ROUTES) in out
    assert "MATCH  export-to-foreign-authority → foreign_authority" in out
    assert "importing_country EC differs from exporting_country FR" in out
    assert "MATCH  french-exports-to-customs → customs" in out
    assert "no     ched-to-traces-and-customs → traces_nt, customs" in out
    assert "kind phytosanitary is not ched" in out
    assert out.rstrip().endswith("destinations: foreign_authority, customs")


def test_cli_explain_an_xml_certificate_with_a_routes_file(runner):
    result = runner.invoke(routes_app, ["explain", str(EXAMPLES / "ched-P-FR-cheese.full.xml"), "--routes", str(DEFAULT_ROUTES)])
    assert result.exit_code == 0, result.output
    assert "MATCH  ched-to-traces-and-customs → traces_nt, customs" in result.stdout
    assert result.stdout.rstrip().endswith("destinations: traces_nt, customs")


def test_cli_explain_exits_1_when_no_rule_matches(runner, tmp_path, monkeypatch):
    routes = tmp_path / "routes.yaml"
    routes.write_text("rules:\n  - name: ched-only\n    when: {kind: [ched]}\n    to: [customs]\n")
    monkeypatch.setenv("HUB_ROUTES", str(routes))
    result = runner.invoke(routes_app, ["explain", str(PHYTO_RECORD)])
    assert result.exit_code == 1
    assert "no     ched-only → customs" in result.stdout
    assert "error: no rule of the routing table matched the document (kind phytosanitary" in result.stderr
    assert "destinations:" not in result.stdout


def test_cli_exits_2_on_a_bad_table_or_document(runner, tmp_path):
    routes = tmp_path / "routes.yaml"
    routes.write_text("rules:\n  - name: typo\n    when: {importing_country: [EUU]}\n    to: [x]\n")
    result = runner.invoke(routes_app, ["explain", str(PHYTO_RECORD), "--routes", str(routes)])
    assert result.exit_code == 2
    assert f"{routes}: rule 'typo': unknown zone 'EUU' in importing_country" in result.stderr
    junk = tmp_path / "doc.txt"
    junk.write_text("not a document")
    result = runner.invoke(routes_app, ["explain", str(junk), "--routes", str(DEFAULT_ROUTES)])
    assert result.exit_code == 2
    assert "is neither XML nor JSON" in result.stderr
    result = runner.invoke(routes_app, ["explain", str(tmp_path / "absent.json"), "--routes", str(DEFAULT_ROUTES)])
    assert result.exit_code == 2
    assert "cannot read" in result.stderr


def test_cli_show_prints_the_rules(runner):
    result = runner.invoke(routes_app, ["show", "--routes", str(DEFAULT_ROUTES)])
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert "10 rules, destinations as4_authority, customs, ephyto_hub, foreign_authority, single_window, traces_nt" in lines[0]
    assert lines[1].split() == ["#", "RULE", "WHEN", "TO", "FINAL"]
    assert lines[2].split()[:3] == ["1", "export-to-foreign-authority", "kind:"]
    assert lines[2].rstrip().endswith("foreign_authority")
    assert lines[3].strip() == "cross_border: yes"
    assert any(line.split()[:2] == ["7", "ched-to-traces-and-customs"] for line in lines)


def test_rules_route_outbound_documents_unless_they_say_inbound():
    table = RoutingTable.from_data({"rules": [
        {"name": "exports", "when": {"kind": ["phytosanitary"]}, "to": ["authority"]},
        {"name": "imports-to-customs", "when": {"direction": "inbound", "importing_country": ["FR"]}, "to": ["customs"]},
    ]})
    outbound = RoutingFacts(kind="phytosanitary", status="issued", exporting_country="FR", importing_country="US")
    inbound = RoutingFacts(kind="phytosanitary", status="issued", exporting_country="US", importing_country="FR", direction="inbound")
    assert table.route(outbound).destinations == ["authority"]
    assert table.route(inbound).destinations == ["customs"]
    explained = {e.name: e for e in table.explain(inbound)}
    assert not explained["exports"].matched and "routes outbound documents" in explained["exports"].reasons[0]
    with pytest.raises(ConfigurationError, match="direction must be outbound or inbound"):
        RoutingTable.from_data({"rules": [{"name": "x", "when": {"direction": "sideways"}, "to": ["a"]}]})


def test_cli_explains_a_received_document_with_inbound_rules(monkeypatch):
    runner = CliRunner()
    monkeypatch.delenv("HUB_ROUTES", raising=False)
    result = runner.invoke(routes_app, ["explain", "--inbound", str(PHYTO_RECORD)])
    assert result.exit_code == 0, result.output
    assert "the rule routes outbound documents" in result.stdout
    assert "destinations: none (a received document is kept for its importing authority)" in result.stdout  # EC imports


def test_a_kind_written_with_an_exclamation_mark_is_excluded():
    table = RoutingTable.from_data({"rules": [{"name": "all-but-intra", "when": {"direction": "inbound", "kind": ["!inspection"]}, "to": ["customs"]}]})
    intra = RoutingFacts(kind="inspection", status="issued", importing_country="FR", direction="inbound")
    phyto = RoutingFacts(kind="phytosanitary", status="issued", importing_country="FR", direction="inbound")
    assert table.route(intra).destinations == [] and table.route(phyto).destinations == ["customs"]
    with pytest.raises(ConfigurationError, match="inspection"):
        RoutingTable.from_data({"rules": [{"name": "typo", "when": {"kind": ["!inspektion"]}, "to": ["customs"]}]})
