"""Auditing flow logs against policy: deciding streams, observed-vs-policy, what-if, summaries, reports.

How the pieces connect::

    FlowRecord stream (netpol_pdp.clients.flowlogs), or a log's raw lines (lines.LinePass:
        repeats answered from a bounded cache of their output lines)
        --deciding.decide_batches(records, decider)--> (records, Decisions) in input order,
          repeated flows decided once; ``decider`` is any function Flow batch -> Decisions
          (an in-process Index, a gRPC server, a worker pool)
        --agreement.compare(record, decision)--> agrees / dropped-but-policy-allows /
          forwarded-but-policy-denies, when the log says what the enforcer did
        --summary.AuditSummary.add(...)--> totals, reasons, top denied pairs, heat map,
          disagreements grouped by pod pair and port
    whatif.WhatIf: the same records against the current and a changed world, in one
        pass; only the flows whose verdict changes, grouped, with the policies responsible
    report.write_report: the summary (and what-if diff) as JSON or a self-contained HTML page

- ``audit.py``      one pass (``run_audit``): records in, output lines in input order, summary filled;
- ``lines.py``      the pass over a log's raw lines: a repeated line (or a reader's quick key) answered
                    from what it gave the first time, before any record is built;
- ``output.py``     an output line: the input's own fields with the decision (rendered once) spliced in;
- ``parallel.py``   the same pass over partitions: ``--jobs`` worker processes or a Dask cluster;
- ``deciding.py``   batching, deduplication and the ``Decider`` type;
- ``agreement.py``  observed enforcer verdict vs the policy decision;
- ``naming.py``     how an endpoint is named and grouped (pod, namespace, labels);
- ``summary.py``    the aggregate of one audit, mergeable across partitions;
- ``whatif.py``     the changed world and the grouped diff;
- ``report.py``     JSON and HTML (Jinja2 template ``templates/report.html.j2``);
- ``html.py``       the HTML page's heat-map colours and its rendering;
- ``text.py``       the totals printed to stderr after an audit.
"""
