"""
Long documents: split an input over MinerU's page limit into slices, stitch the slices' results
into one folder that reads like an unsplit result.

``plan`` (slicing rules, learned limits), ``split`` (local PDF parts), ``parts`` (each slice's
outcome, the XCom ``parts`` list, what a retry sends again), ``stitch`` (one result folder from
the slices' folders). Not yet called by the operators: see ``docs/long-documents.md``.
"""
