"""bench/results.json into bench/RESULTS.template.md: each section's figures
become the template's fields; a section not run or failed says so."""

import math
from pathlib import Path

TEMPLATE = Path(__file__).resolve().parent / "RESULTS.template.md"
GOALS = {"cost_10": 0.00005, "last_member_s": 2.0, "batch_s": 5.0, "bytes_per_participant": 4096, "bus_entries": 3,
         "ws_median_ms": 100, "ws_p99_ms": 300, "coldstart_ratio": 1.15}


class Fields(dict):
    def __missing__(self, key):
        return "(not measured in this run)"


def money(dollars: float) -> str:
    if not dollars:
        return "$0"
    decimals = max(2, 2 - math.floor(math.log10(abs(dollars))))
    return f"${dollars:.{decimals}f}"


def row(*cells) -> str:
    return "| " + " | ".join(str(cell) for cell in cells) + " |"


def verdict(measured: float, target: float) -> str:
    return "meets" if measured <= target else "**above**"


def counted(mapping: dict) -> str:
    return ", ".join(f"{count:,} {name}" for name, count in sorted(mapping.items(), key=lambda kv: -kv[1])) or "none"


def groups(data: dict, fields: Fields, goals: list) -> None:
    sizes = data["sizes"]
    by_n = {s["participants"]: s for s in sizes}
    fields.update(sizes_header=" | ".join(f"{s['participants']:,}" for s in sizes),
                  sizes_rule="---|" * len(sizes), push_ms=f"{data['push_seconds'] * 1000:.0f}",
                  prices_date=data["prices_date"], region="us-east-1",
                  memory=", ".join(f"{name} {mb} MB" for name, mb in data["memory_mb"].items()))
    lines = list(sizes[0]["bill"])
    cost = [row(line if line != "total" else "**total**", *(money(s["bill"][line]) for s in sizes)) for line in lines]
    cost.append(row("per participant", *(money(s["per_participant"]) for s in sizes)))
    cost.append(row("a million such messages", *(f"${s['bill']['total'] * 1e6:,.2f}" for s in sizes)))
    fields["cost"] = "\n".join(cost)
    each = {
        "send: DynamoDB requests": lambda s: counted(s["send"]["requests"]),
        "stream: DynamoDB requests": lambda s: counted(s["stream"]["requests"]),
        "write / read units (send + stream)": lambda s: f"{s['counts']['write_units']:,.0f} / "
                                                        f"{s['counts']['read_units']:,.1f}",
        "write units by item (send + stream)": lambda s: counted(s["write_units_by"]),
        "stream invocations, seconds in all": lambda s: f"{s['stream']['invocations']}, {s['stream']['seconds']:.2f}",
        "pushes": lambda s: f"{s['pushes']['count']:,}: {counted(s['pushes']['by_type'])}",
        "bytes pushed per participant, mean / most": lambda s: f"{s['pushes']['bytes_per_participant_mean']:,.0f} / "
                                                               f"{s['pushes']['bytes_per_participant_max']:,}",
        "largest push, bytes": lambda s: f"{s['pushes']['largest_bytes']:,}",
        "bus entries (requests)": lambda s: f"{s['bus']['entries']:,} ({s['bus']['requests']}): "
                                            f"{counted(s['bus']['by_type'])}",
        "bus entries refused (over PutEvents' limits); records failed": lambda s: (
            f"{s['bus']['refused']:,}; {s['records_failed']:,}"),
        "messagechat_created after the record, first / median / p99 / last": lambda s: (
            f"{s['latency']['first_s']:.2f} / {s['latency']['median_s']:.2f} / {s['latency']['p99_s']:.2f} / "
            f"{s['latency']['last_s']:.2f} s"),
        "that batch, whole": lambda s: f"{s['latency']['batch_s']:.2f} s",
        "create the group (API): requests, write units, seconds": lambda s: (
            f"{s['create']['requests']}, {s['create']['write_units']:,.0f}, {s['create']['seconds']:.2f}"),
    }
    fields["groups"] = "\n".join(row(name, *(show(s) for s in sizes)) for name, show in each.items())
    if 10 in by_n:
        goals.append(row("cost of a message to 10", money(by_n[10]["bill"]["total"]), money(GOALS["cost_10"]),
                         verdict(by_n[10]["bill"]["total"], GOALS["cost_10"])))
    if 10 in by_n and 1000 in by_n:
        at_10, at_1000 = by_n[10]["per_participant"], by_n[1000]["per_participant"]
        goals.append(row("cost per participant at 1,000 vs at 10", f"{money(at_1000)} vs {money(at_10)}",
                         "no higher", verdict(at_1000, at_10)))
    big = sizes[-1]
    n = f"{big['participants']:,}"
    goals.append(row(f"last member's messagechat_created at {n}", f"{big['latency']['last_s']:.2f} s",
                     f"{GOALS['last_member_s']} s", verdict(big["latency"]["last_s"], GOALS["last_member_s"])))
    goals.append(row(f"that whole batch at {n}", f"{big['latency']['batch_s']:.2f} s", f"{GOALS['batch_s']} s",
                     verdict(big["latency"]["batch_s"], GOALS["batch_s"])))
    most = max(s["pushes"]["bytes_per_participant_max"] for s in sizes)
    goals.append(row("bytes pushed per participant, any size", f"{most:,}", "4 KiB",
                     verdict(most, GOALS["bytes_per_participant"])))
    entries = max(s["bus"]["entries"] for s in sizes)
    goals.append(row("bus entries per message, any size", f"{entries:,}", GOALS["bus_entries"],
                     verdict(entries, GOALS["bus_entries"])))


def budgets(data: dict, fields: Fields, goals: list) -> None:
    fields["operations"] = "\n".join(row(name, counted(expected)) for name, expected in data["operations"].items())
    fields["budget_tests"] = "\n".join(f"- `{t['name']}`: {t['says']}" for t in data["tests"])


def coldstart(data: dict, fields: Fields, goals: list) -> None:
    medians, ratio = data["medians"], data["ratio"]
    labels = {"import_s": "import", "total_s": "**import + first request**", "cpu_s": "the same, CPU time",
              "process_s": "the whole process"}
    fields["coldstart"] = "\n".join(row(label, *(f"{medians[name][key] * 1000:.0f}" for name in ("ours", "bare")),
                                        f"{ratio[key]:.2f}") for key, label in labels.items())
    fields.update(coldstart_runs=data["runs"], coldstart_load=" / ".join(f"{x:.2f}" for x in data["load"]),
                  coldstart_extra=", ".join(f"{name} {ms:.0f} ms" for name, ms in data["extra_packages_ms"].items()
                                            if ms >= 0.5))
    for key, label in (("total_s", "wall"), ("cpu_s", "CPU")):
        goals.append(row(f"cold start, ours / bare ({label} time)", f"{ratio[key]:.2f}", GOALS["coldstart_ratio"],
                         verdict(ratio[key], GOALS["coldstart_ratio"])))


def ws_latency(data: dict, fields: Fields, goals: list) -> None:
    fields["ws_latency"] = (f"{data['received']} of {data['messages']} received: median {data['median_ms']:.0f} ms, "
                            f"p99 {data['p99_ms']:.0f} ms, worst {data['worst_ms']:.0f} ms (load average at the end "
                            f"{' / '.join(f'{x:.2f}' for x in data['load'])}).")
    goals.append(row("`make run` 1:1 push, median", f"{data['median_ms']:.0f} ms", f"< {GOALS['ws_median_ms']} ms",
                     verdict(data["median_ms"], GOALS["ws_median_ms"])))
    goals.append(row("`make run` 1:1 push, p99", f"{data['p99_ms']:.0f} ms", f"< {GOALS['ws_p99_ms']} ms",
                     verdict(data["p99_ms"], GOALS["ws_p99_ms"])))


SECTIONS = {"budgets": budgets, "groups": groups, "coldstart": coldstart, "ws_latency": ws_latency}  # run_all's order


def render(results: dict) -> str:
    fields, goals = Fields(date=results["date"], machine=results["machine"],
                           total_seconds=f"{results['total_seconds']:.0f}"), []
    runs = []
    for name, fill in SECTIONS.items():
        run = results.get(name)
        if run is None:
            continue
        runs.append(row(name, f"{run['seconds']:.0f}" + (" (**failed**)" if run["failed"] else ""),
                        f"{run['load_before']} → {run['load_after']}"))
        if run["failed"]:
            fields[name] = f"**failed**: {run['error'].strip().splitlines()[-1] if run['error'].strip() else '?'}"
        else:
            fill(run["data"], fields, goals)
    fields.update(runs="\n".join(runs), goals="\n".join(goals) or row("(none measured)", "", "", ""))
    return TEMPLATE.read_text().format_map(fields)
