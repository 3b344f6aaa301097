# authtable.awk turns BenchmarkAuth output into the authentication-cost
# table of docs/benchmarks.md. Feed it one or more rounds (each round runs
# signed then unsigned for every engine and operation):
#
#   for i in $(seq 10); do go test ./bench -run '^$' -bench Auth -benchtime 1s; done | awk -f bench/authtable.awk
#
# Each round's signed result is paired with the unsigned result that ran
# right after it, so a machine whose load changes between rounds still gives
# a fair ratio; the table shows medians over rounds.
#
# Columns: throughput of signed and unsigned calls (calls/s, 8 clients), the
# signed/unsigned throughput ratio (median, and its spread over rounds), in-process CPU per call for each variant
# (SDK client + API + SQLite; PostgreSQL's backends are not counted), the
# CPU authentication adds per call (signed minus unsigned), and the mean wall
# time a call spends inside the API handler, signed and unsigned.

/^BenchmarkAuth\// {
	split($1, p, "/")
	engine = p[2]; op = p[3]; variant = p[4]; sub(/-[0-9]+$/, "", variant)
	ops = ""; cpu = ""; hnd = ""
	for (i = 2; i < NF; i++) {
		if ($(i+1) == "ops/s") ops = $i
		if ($(i+1) == "cpu-us/op") cpu = $i
		if ($(i+1) == "handler-us/op") hnd = $i
	}
	key = engine "/" op
	if (!(key in seen)) { seen[key] = 1; order[++nkeys] = key }
	if (variant == "signed") { lastOps[key] = ops; lastCPU[key] = cpu; lastHnd[key] = hnd; next }
	if (variant == "unsigned" && (key in lastOps)) {
		n = ++rounds[key]
		sOps[key, n] = lastOps[key]; uOps[key, n] = ops
		sCPU[key, n] = lastCPU[key]; uCPU[key, n] = cpu
		ratio[key, n] = lastOps[key] / ops
		dCPU[key, n] = lastCPU[key] - cpu
		sHnd[key, n] = lastHnd[key] / 1000; uHnd[key, n] = hnd / 1000
		delete lastOps[key]
	}
}

function extreme(arr, key, n, sign,    i, m) {
	m = arr[key, 1]
	for (i = 2; i <= n; i++) if (sign * arr[key, i] > sign * m) m = arr[key, i]
	return m
}

function median(arr, key, n,    i, j, t, v) {
	for (i = 1; i <= n; i++) v[i] = arr[key, i]
	for (i = 2; i <= n; i++) for (j = i; j > 1 && v[j-1] > v[j]; j--) { t = v[j]; v[j] = v[j-1]; v[j-1] = t }
	if (n % 2) return v[(n+1)/2]
	return (v[n/2] + v[n/2+1]) / 2
}

END {
	printf "%-9s %-7s %6s %9s %11s %6s %10s %11s %11s %12s %11s %11s\n", "engine", "call", "rounds", "signed/s", "unsigned/s", "ratio",
		"(min-max)", "cpu-us sig", "cpu-us uns", "auth cpu-us", "handler-ms", "handler-ms"
	printf "%-9s %-7s %6s %9s %11s %6s %10s %11s %11s %12s %11s %11s\n", "", "", "", "", "", "", "", "", "", "", "signed", "unsigned"
	for (k = 1; k <= nkeys; k++) {
		key = order[k]; n = rounds[key]
		if (!n) continue
		split(key, q, "/")
		printf "%-9s %-7s %6d %9.0f %11.0f %6.2f %10s %11.0f %11.0f %12.0f %11.1f %11.1f\n", q[1], q[2], n,
			median(sOps, key, n), median(uOps, key, n), median(ratio, key, n),
			sprintf("%.2f-%.2f", extreme(ratio, key, n, -1), extreme(ratio, key, n, 1)),
			median(sCPU, key, n), median(uCPU, key, n), median(dCPU, key, n), median(sHnd, key, n), median(uHnd, key, n)
	}
}
