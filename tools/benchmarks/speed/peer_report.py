"""Markdown tables of a ``tools/benchmarks/peer_step.py`` report."""
from typing import List

__all__ = ['markdown']

#: The targets of the comparison.
TARGET_VS_PEER, TARGET_OVERHEAD, TARGET_CALIBRATION = 1.0, 1.05, 0.9
_NAMES = {'mmdet_ld': "MMDetection's LD", 'mmrazor': 'MMRazor'}


def _mib(n) -> str:
    return '-' if n is None else f'{n / 2**20:.0f}'


def _ratio(r: dict) -> str:
    return (f"{r['per_round_median']:.3f} [{r['per_round_min']:.3f}, {r['per_round_max']:.3f}]")


def _machine(report: dict) -> str:
    for runs in report['runs'].values():
        for res in runs.values():
            if 'env' in res:
                e = res['env']
                return (f"{e['cpu_count']}-core {e['machine']} CPU ({e['cpu_model']}), "
                        f"{e['torch_threads']} torch thread(s) per process")
    return 'unknown machine'


def markdown(report: dict) -> str:
    """Step times, peak RSS, loss checks and the calibration pass, with targets marked."""
    a = report['args']
    lines = [f"### Ours vs the peers' distillers, {_machine(report)}", '',
             f"GFL R-101 -> R-50 ({a['models']} models, random weights), batch {a['batch']}; "
             f"median of {a['iters']} interleaved rounds after {a['warmup']} warm-up; ratios: "
             'median of per-round ratios [min, max]; peak RSS: one process per model, '
             f"{a['rss_steps']} steps.", '',
             '| size | peer | torch | student ms | teacher fwd ms | ours ms | peer ms '
             '| ours/peer | ours/(student+teacher) | peer/(student+teacher) '
             '| user CPU ours/peer | peak RSS student / ours / peer MiB |',
             '|---|---|---|---|---|---|---|---|---|---|---|---|']
    notes: List[str] = []
    for size, runs in report['runs'].items():
        for peer, r in runs.items():
            if 'skipped' in r or 'error' in r:
                why = r.get('skipped') or f"ERROR: {r['error']}"
                lines.append(f'| {size} | {_NAMES[peer]} | {why} |')
                continue
            t, q = r['times_ms'], r['ratios']
            rss = r.get('peak_rss', {})
            mem = ' / '.join(_mib(rss.get(c, {}).get('peak_rss_bytes')) for c in
                             ('student', 'ours', 'peer'))
            cpu = _ratio(q['ours_over_peer_user_cpu']) if 'ours_over_peer_user_cpu' in q else '-'
            lines.append(
                f"| {size} | {_NAMES[peer]} | {r['env']['torch']} | {t['student']['median']:.0f} "
                f"| {t['teacher']['median']:.0f} | {t['ours']['median']:.0f} "
                f"| {t['peer']['median']:.0f} | {_ratio(q['ours_over_peer'])} "
                f"| {_ratio(q['ours_over_student_plus_teacher'])} "
                f"| {_ratio(q['peer_over_student_plus_teacher'])} "
                f"| {cpu} | {mem} |")
            if 'teacher_loss_mode' in t:
                notes.append(
                    f"{size}, {_NAMES[peer]}: its teacher runs in loss mode, "
                    f"{t['teacher_loss_mode']['median']:.0f} ms vs {t['teacher']['median']:.0f} "
                    f"ms for the forward alone "
                    f"({_ratio(q['teacher_loss_mode_over_teacher'])}x); its step / (student + "
                    f"loss-mode teacher) = {_ratio(q['peer_over_student_plus_teacher_loss_mode'])}")
            if 'ours_over_ours_copy' in q:
                notes.append(
                    f"{size}, {_NAMES[peer]}, control (each distiller built twice from the same "
                    f"weights, all four in the same rounds): ours/ours copy "
                    f"{_ratio(q['ours_over_ours_copy'])}, peer/peer copy "
                    f"{_ratio(q['peer_over_peer_copy'])}; ours copy/peer copy "
                    f"{_ratio(q['ours_copy_over_peer_copy'])} (ours/peer "
                    f"{_ratio(q['ours_over_peer'])})")
            for side in ('student', 'teacher', 'ours', 'peer'):
                if t[side]['rel_spread'] > 0.2:
                    notes.append(f"{size}, {_NAMES[peer]}: {side} rounds spread "
                                 f"{t[side]['rel_spread']:.0%} of the median "
                                 f"[{t[side]['min']:.0f}, {t[side]['max']:.0f}] ms")
    if notes:
        lines += [''] + [f'- {n}' for n in notes]
    lines += _usage(report)
    lines += _isolated(report)
    lines += ['', '| size | peer | loss | ours | peer | peer in our convention | rel. diff '
              '| convention |', '|---|---|---|---|---|---|---|---|']
    for size, runs in report['runs'].items():
        for peer, r in runs.items():
            if 'losses' not in r:
                continue
            for name, c in r['losses']['checks'].items():
                conv = c.get('peer_in_our_convention')
                rel = c.get('rel_diff')
                lines.append(f"| {size} | {_NAMES[peer]} | {name} | {c['ours']:.6g} "
                             f"| {c['peer']:.6g} | {'-' if conv is None else f'{conv:.6g}'} "
                             f"| {'-' if rel is None else f'{rel:.1e}'} | {c['convention']} |")
    lines += _profiles(report)
    c = report.get('calibration_pass')
    if c is not None:
        lines += ['']
        if 'error' in c:
            lines.append(f"Calibration pass: ERROR: {c['error']}")
        else:
            met = 'met' if c['collect_over_predict_throughput'] >= TARGET_CALIBRATION else 'MISSED'
            lines.append(
                f"Calibration pass ({c['size'][0]}x{c['size'][1]}, {c['images']} images, "
                f"R-101 teacher, torch {c['env']['torch']}): {c['collect_images_per_s']:.3f} "
                f"img/s vs plain predict {c['predict_images_per_s']:.3f} img/s = "
                f"{c['collect_over_predict_throughput']:.3f}x (target >= {TARGET_CALIBRATION}: "
                f"{met}); {c['detections_collected']} detections collected, "
                f"{c['detections_predicted']} predicted.")
    lines += ['', _targets(report)]
    return '\n'.join(lines)


def _runs_with(report: dict, field: str):
    """(size, peer, run) of every comparison whose result has a non-empty ``field``."""
    for size, runs in report['runs'].items():
        for peer, r in runs.items():
            if r.get(field):
                yield size, peer, r


def _table(report: dict, field: str, intro: str, columns: List[str], rows) -> List[str]:
    """A table with one block of ``rows(size, peer, run)`` per comparison that has ``field``;
    empty when none has it."""
    body = [row for size, peer, r in _runs_with(report, field) for row in rows(size, peer, r)]
    if not body:
        return []
    return ['', intro, '', '| ' + ' | '.join(columns) + ' |',
            '|' + '---|' * len(columns)] + body


def _usage(report: dict) -> List[str]:
    """Per step (medians): CPU time of all threads, user and kernel, and minor page faults."""
    def rows(size, peer, r):
        return [f"| {size} | {_NAMES[peer]} | {cand} | {r['times_ms'][cand]['median']:.0f} "
                f"| {c['user_ms']['median']:.0f} | {c['sys_ms']['median']:.0f} "
                f"| {c['minor_faults']['median'] / 1e3:.0f} |" for cand, c in r['usage'].items()]

    return _table(report, 'usage',
                  'CPU time per step (medians, all threads of the process; kernel time is mostly '
                  'page faults: first touches of memory the allocator has just mapped):',
                  ['size', 'peer', 'candidate', 'wall ms', 'user CPU ms', 'kernel CPU ms',
                   'minor faults (k)'], rows)


def _isolated(report: dict) -> List[str]:
    """Every candidate alone in its own process (no shared heap), steps interleaved."""
    def rows(size, peer, r):
        i = r['isolated']
        q = i['ratios']['ours_over_peer']
        out = []
        for cand in i['candidates']:
            u = i['usage'][cand]
            peak = i['peak_rss_bytes'][cand]
            out.append(f"| {size} | {_NAMES[peer]} | {cand} | {i['times_ms'][cand]['median']:.0f} "
                       f"| {u['user_ms']['median']:.0f} | {u['sys_ms']['median']:.0f} "
                       f"| {u['minor_faults']['median'] / 1e3:.0f} | {_mib(peak)} "
                       + (f"| {_ratio(q)} | {q['of_medians']:.3f} "
                          f"| {q['rounds_below_1']} of {q['rounds']} ({i['sets']} sets) "
                          f"| {_ratio(i['ratios']['ours_over_peer_user_cpu'])} "
                          f"| {_ratio(i['ratios']['ours_over_student_plus_teacher'])} |"
                          if cand == 'ours' else '| | | | | |'))
        if i['sets'] > 1:
            per_set = ', '.join(f"{s['ours_over_peer']['per_round_median']:.3f}"
                                for s in i['per_set'])
            out.append(f'| {size} | {_NAMES[peer]} | ours/peer per set | {per_set} |'
                       + ' |' * 9)
        return out

    return _table(report, 'isolated',
                  'Each candidate alone in its own process (the steps interleaved between the '
                  'processes, one computing at a time; medians; peak RSS over all its steps; '
                  'ours/peer as the median of per-round ratios [min, max] and as the ratio of '
                  'the medians):',
                  ['size', 'peer', 'candidate', 'wall ms', 'user CPU ms', 'kernel CPU ms',
                   'minor faults (k)', 'peak RSS MiB', 'ours/peer', 'of medians',
                   'rounds ours faster', 'user CPU ours/peer', 'ours/(student+teacher)'], rows)


def _profiles(report: dict, top: int = 8) -> List[str]:
    out = []
    for size, peer, r in _runs_with(report, 'profile'):
        ours, theirs = r['profile']['ours'], r['profile']['peer']
        out += ['', f"Profile, {size}, one step each (self CPU ms): ours "
                f"{ours['total_self_cpu_ms']:.0f}, {_NAMES[peer]} "
                f"{theirs['total_self_cpu_ms']:.0f}", '',
                '| operator | ours ms | calls | peer ms | calls |', '|---|---|---|---|---|']
        t_rows = {e['op']: e for e in theirs['top']}
        o_rows = {e['op']: e for e in ours['top']}
        names = [e['op'] for e in ours['top'][:top]]
        names += [e['op'] for e in theirs['top'][:top] if e['op'] not in names]
        for op in names:
            cells = []
            for row in (o_rows.get(op), t_rows.get(op)):
                cells += ['-', '-'] if row is None else [f"{row['self_cpu_ms']:.0f}",
                                                         str(row['calls'])]
            out.append(f"| {op} | {' | '.join(cells)} |")
    return out


def _targets(report: dict) -> str:
    out = []
    for size, runs in report['runs'].items():
        for peer, r in runs.items():
            if 'ratios' not in r:
                continue
            q = r['ratios']
            v = q['ours_over_peer']['per_round_median']
            out.append(f"{size} vs {_NAMES[peer]}: ours/peer {v:.3f} in one process (target <= "
                       f"{TARGET_VS_PEER}: {'met' if v <= TARGET_VS_PEER else 'MISSED'})")
            if 'isolated' in r:
                v = r['isolated']['ratios']['ours_over_peer']['per_round_median']
                out.append(f"{size} vs {_NAMES[peer]}: ours/peer {v:.3f} each in its own process "
                           f"(target <= {TARGET_VS_PEER}: "
                           f"{'met' if v <= TARGET_VS_PEER else 'MISSED'})")
            if r['spec']['size'] == [800, 1333]:
                o = q['ours_over_student_plus_teacher']['per_round_median']
                out.append(f"{size} ({_NAMES[peer]} set): ours/(student+teacher) {o:.3f} in one "
                           f"process (target <= {TARGET_OVERHEAD}: "
                           f"{'met' if o <= TARGET_OVERHEAD else 'MISSED'})")
                if 'isolated' in r:
                    o = r['isolated']['ratios']['ours_over_student_plus_teacher'][
                        'per_round_median']
                    out.append(f"{size} ({_NAMES[peer]} set): ours/(student+teacher) {o:.3f} each "
                               f"in its own process (target <= {TARGET_OVERHEAD}: "
                               f"{'met' if o <= TARGET_OVERHEAD else 'MISSED'})")
    return 'Targets: ' + ('; '.join(out) if out else 'none measured') + '.'
