# failrecap.awk passes `go test -v` output through unchanged and, at the
# end, repeats for each failed test the last lines its test files wrote
# (the "file_test.go:N: ..." lines of t.Log, t.Error and t.Fatal): long
# runs bury a failure's message under logs, and CI keeps only the tail.
#
#   go test -v ... 2>&1 | awk -f tests/failrecap.awk
{ print; fflush() }
/^=== (RUN|CONT|NAME) / { cur = $3 }
/^[ \t]+[A-Za-z0-9_]+_test\.go:[0-9]+: / {
	n[cur]++
	said[cur, n[cur]] = $0
}
/^[ \t]*--- FAIL: / { failed[++nf] = $3 }
END {
	if (nf == 0) exit
	print "\n=== what the failed tests said last (repeated from above)"
	for (i = 1; i <= nf; i++) {
		t = failed[i]
		if (!(t in n)) continue
		print "--- " t
		from = n[t] - 14; if (from < 1) from = 1
		for (j = from; j <= n[t]; j++) print said[t, j]
	}
}
