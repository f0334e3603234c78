// runner: the measuring half of bench/compare. For each pair it runs our
// adapter and Knative's (order alternating) against a fresh fakeapi and
// countsink, the adapter pinned to one CPU and the servers to another, with
// the environment Knative's controller gives its receive adapter, and prints
// the table of issue 10: medians, min-max, ratios and goals.
package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
	"unsafe"
)

var (
	toolDir    = flag.String("tools", "", "folder holding the fakeapi and countsink binaries")
	oursBin    = flag.String("ours", "", "our adapter binary")
	knBin      = flag.String("knative", "", "Knative's apiserver_receive_adapter binary")
	workDir    = flag.String("work", "", "folder for logs and kubeconfigs")
	pairs      = flag.Int("pairs", 3, "interleaved pairs of runs")
	nEvents    = flag.Int("n", 100000, "events per instant-sink run (and objects for the peak RSS)")
	nSlowOurs  = flag.Int("n-slow-ours", 20000, "events per 5 ms sink run, ours")
	nSlowKn    = flag.Int("n-slow-knative", 2000, "events per 5 ms sink run, Knative's")
	size       = flag.Int("size", 1536, "bytes per watch event")
	slowDelay  = flag.Duration("slow-delay", 5*time.Millisecond, "answer delay of the slow sink")
	idleWait   = flag.Duration("idle", 5*time.Second, "idle time before the idle RSS is read")
	adapterCPU = flag.Int("adapter-cpu", 0, "CPU the adapter is pinned to (-1: no pinning)")
	serverCPU  = flag.Int("server-cpu", 1, "CPU the servers are pinned to (-1: no pinning)")
	latCluster = flag.String("latency-cluster", "", "scripts/local-cluster: also measure latency against the real control plane")
	latPairs   = flag.Int("latency-pairs", 1, "interleaved pairs of latency runs")
	latRate    = flag.Int("latency-rate", 1000, "objects created per second in a latency run")
	latDur     = flag.Duration("latency-duration", 10*time.Second, "length of a latency run")
	label      = flag.String("label", "", "extra line printed under the table (machine, command)")
)

type adapter struct {
	name string
	bin  string
	args []string
}

// samples[adapter][metric]
var samples = map[string]map[string][]float64{}

func add(ad, metric string, v float64) {
	if samples[ad] == nil {
		samples[ad] = map[string][]float64{}
	}
	samples[ad][metric] = append(samples[ad][metric], v)
}

func logf(format string, a ...any) {
	fmt.Fprintf(os.Stderr, "compare: "+format+"\n", a...)
}

// live: every child started, so that die and a signal stop them all
// (the control plane with SIGTERM, so it takes etcd and kube-apiserver
// down with it); signalling an already reaped child is a no-op in os/exec.
var (
	liveMu sync.Mutex
	live   []*exec.Cmd
)

func track(cmd *exec.Cmd) {
	liveMu.Lock()
	live = append(live, cmd)
	liveMu.Unlock()
}

func stopAll() {
	liveMu.Lock()
	defer liveMu.Unlock()
	for i := len(live) - 1; i >= 0; i-- {
		if live[i].Process != nil {
			_ = live[i].Process.Signal(syscall.SIGTERM)
		}
	}
	time.Sleep(2 * time.Second)
	for _, c := range live {
		if c.Process != nil && c.Path != "" && !strings.HasSuffix(c.Path, "local-cluster") {
			_ = c.Process.Kill()
		}
	}
	live = nil
}

func die(format string, a ...any) {
	logf("ERROR: "+format, a...)
	stopAll()
	os.Exit(1)
}

// startPinned starts cmd with its CPU affinity set to cpu: the child inherits
// the mask of the thread that forks it, so that thread is locked, narrowed,
// and restored afterwards. No taskset exec sits between exec and the
// adapter's first instruction.
func startPinned(cmd *exec.Cmd, cpu int) error {
	if cpu < 0 {
		err := cmd.Start()
		if err == nil {
			track(cmd)
		}
		return err
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	var old, mask [16]uint64
	if _, _, e := syscall.RawSyscall(syscall.SYS_SCHED_GETAFFINITY, 0, unsafe.Sizeof(old), uintptr(unsafe.Pointer(&old))); e != 0 {
		return fmt.Errorf("sched_getaffinity: %v", e)
	}
	mask[cpu/64] = 1 << (cpu % 64)
	if _, _, e := syscall.RawSyscall(syscall.SYS_SCHED_SETAFFINITY, 0, unsafe.Sizeof(mask), uintptr(unsafe.Pointer(&mask))); e != 0 {
		return fmt.Errorf("sched_setaffinity to CPU %d: %v", cpu, e)
	}
	err := cmd.Start()
	if err == nil {
		track(cmd)
	}
	syscall.RawSyscall(syscall.SYS_SCHED_SETAFFINITY, 0, unsafe.Sizeof(old), uintptr(unsafe.Pointer(&old)))
	return err
}

type server struct {
	cmd  *exec.Cmd
	port int
}

func startServer(name string, args ...string) *server {
	cmd := exec.Command(filepath.Join(*toolDir, name), args...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		die("%s: %v", name, err)
	}
	errf, _ := os.Create(filepath.Join(*workDir, name+".log"))
	cmd.Stderr = errf
	if err := startPinned(cmd, *serverCPU); err != nil {
		die("start %s: %v", name, err)
	}
	line, err := bufio.NewReader(out).ReadString('\n')
	var port int
	if _, e := fmt.Sscanf(line, "port %d", &port); err != nil || e != nil {
		die("%s did not report its port (%q, %v)", name, line, err)
	}
	go io.Copy(io.Discard, out)
	return &server{cmd, port}
}

func (s *server) stop() {
	_ = s.cmd.Process.Kill()
	_ = s.cmd.Wait()
}

func (s *server) stats(v any) error {
	c := http.Client{Timeout: 5 * time.Second}
	r, err := c.Get(fmt.Sprintf("http://127.0.0.1:%d/_bench/stats", s.port))
	if err != nil {
		return err
	}
	defer r.Body.Close()
	return json.NewDecoder(r.Body).Decode(v)
}

type fakeStats struct {
	FirstRequestNs int64    `json:"first_request_ns"`
	StreamStartNs  int64    `json:"stream_start_ns"`
	StreamEndNs    int64    `json:"stream_end_ns"`
	Watches        int64    `json:"watches"`
	Requests       []string `json:"requests"`
}

type sinkStats struct {
	Count   int64 `json:"count"`
	FirstNs int64 `json:"first_ns"`
	NthNs   int64 `json:"nth_ns"`
}

// procCPU: user+system CPU seconds of pid so far (/proc/PID/stat fields 14, 15).
func procCPU(pid int) float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return -1
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	u, _ := strconv.ParseFloat(f[11], 64)
	k, _ := strconv.ParseFloat(f[12], 64)
	return (u + k) / 100 // USER_HZ is 100 on Linux
}

// procKiB: a "VmRSS:"-style line of /proc/PID/status, in KiB.
func procKiB(pid int, key string) float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return -1
	}
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, key+":") {
			v, _ := strconv.ParseFloat(strings.Fields(l)[1], 64)
			return v
		}
	}
	return -1
}

func tail(path string, n int) string {
	b, _ := os.ReadFile(path)
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

const zapConfig = `{"level":"info","development":false,"outputPaths":["stdout"],"errorOutputPaths":["stderr"],"encoding":"json","encoderConfig":{"timeKey":"ts","levelKey":"level","nameKey":"logger","callerKey":"caller","messageKey":"msg","stacktraceKey":"stacktrace","lineEnding":"","levelEncoder":"","timeEncoder":"iso8601","durationEncoder":"","callerEncoder":""}}`

// env: what Knative's controller puts in the receive-adapter container
// (pkg/reconciler/apiserversource/resources/receive_adapter.go, v0.49.2, with
// the shipped config-logging and config-observability), plus KUBECONFIG.
func env(sinkPort int, kubeconfig string) []string {
	logging, _ := json.Marshal(map[string]string{"zap-logger-config": zapConfig})
	return []string{
		"PATH=" + os.Getenv("PATH"),
		"HOME=" + *workDir,
		fmt.Sprintf("K_SINK=http://127.0.0.1:%d", sinkPort),
		`K_SOURCE_CONFIG={"namespaces":["bench"],"allNamespaces":false,"resources":[{"gvr":{"Group":"bench.example.com","Version":"v1","Resource":"widgets"}}],"mode":"Resource"}`,
		"SYSTEM_NAMESPACE=knative-eventing",
		"NAMESPACE=bench",
		"NAME=bench",
		"METRICS_DOMAIN=knative.dev/eventing",
		"K_LOGGING_CONFIG=" + string(logging),
		`K_OBSERVABILITY_CONFIG={"tracing":{"protocol":"none"},"metrics":{"protocol":"none"},"runtime":{},"enableSinkEventErrorReporting":false}`,
		"KUBECONFIG=" + kubeconfig,
	}
}

var (
	runSeq int
	shown  = map[string]bool{}
)

// run: one adapter run. kind is idle (no events: start time, idle RSS),
// instant (n events, instant sink: rate, CPU, peak RSS), slow (5 ms sink) or
// reference (ours, instant, --object-state reference: peak RSS).
func run(ad adapter, kind string) {
	runSeq++
	n := *nEvents
	delay := time.Duration(0)
	switch kind {
	case "idle":
		n = 0
	case "slow":
		n = *nSlowKn
		if ad.name == "ours" {
			n = *nSlowOurs
		}
		delay = *slowDelay
	}
	fake := startServer("fakeapi", "-n", strconv.Itoa(n), "-size", strconv.Itoa(*size))
	defer fake.stop()
	sink := startServer("countsink", "-delay", delay.String(), "-n", strconv.Itoa(n))
	defer sink.stop()
	kc := filepath.Join(*workDir, fmt.Sprintf("kubeconfig-%d", runSeq))
	_ = os.WriteFile(kc, []byte(fmt.Sprintf(`apiVersion: v1
kind: Config
clusters:
- name: fake
  cluster:
    server: http://127.0.0.1:%d
users:
- name: bench
  user: {}
contexts:
- name: fake
  context:
    cluster: fake
    user: bench
    namespace: bench
current-context: fake
`, fake.port)), 0o600)
	args := append([]string(nil), ad.args...)
	if kind == "reference" {
		args = append(args, "--object-state", "reference")
	}
	logPath := filepath.Join(*workDir, fmt.Sprintf("%02d-%s-%s.log", runSeq, ad.name, kind))
	lf, _ := os.Create(logPath)
	defer lf.Close()
	cmd := exec.Command(ad.bin, args...)
	cmd.Env = env(sink.port, kc)
	cmd.Stdout, cmd.Stderr = lf, lf
	t0 := time.Now().UnixNano()
	if err := startPinned(cmd, *adapterCPU); err != nil {
		die("start %s: %v", ad.bin, err)
	}
	pid := cmd.Process.Pid
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	stop := func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(40 * time.Second):
			logf("%s did not exit 40 s after SIGTERM; killing it", ad.name)
			_ = cmd.Process.Kill()
			<-exited
		}
	}
	failed := func(what string) {
		var fs fakeStats
		_ = fake.stats(&fs)
		logf("%s %s run: %s; requests seen: %q; log %s ends:\n%s", ad.name, kind, what, fs.Requests, logPath, tail(logPath, 15))
		stop()
		die("%s %s run failed", ad.name, kind)
	}
	poll := func(timeout time.Duration, done func() bool) {
		deadline := time.Now().Add(timeout)
		for !done() {
			select {
			case err := <-exited:
				exited <- err
				failed(fmt.Sprintf("the adapter exited early (%v)", err))
			case <-time.After(5 * time.Millisecond):
			}
			if time.Now().After(deadline) {
				failed(fmt.Sprintf("timed out after %s", timeout))
			}
		}
	}
	var fs fakeStats
	poll(60*time.Second, func() bool { return fake.stats(&fs) == nil && fs.Watches > 0 })
	startMs := float64(fs.FirstRequestNs-t0) / 1e6
	add(ad.name, "start", startMs)
	if kind == "idle" {
		if !shown[ad.name] {
			shown[ad.name] = true
			logf("requests of %s to the API server: %q", ad.name, fs.Requests)
		}
		time.Sleep(*idleWait)
		rss := procKiB(pid, "VmRSS")
		add(ad.name, "idle_rss", rss/1024)
		logf("%-7s %-9s exec->first request %6.1f ms, RSS after %s idle %6.1f MiB", ad.name, kind, startMs, *idleWait, rss/1024)
		stop()
		return
	}
	var ss sinkStats
	timeout := 120*time.Second + time.Duration(n)*time.Millisecond
	if kind == "slow" {
		timeout += time.Duration(n) * 10 * time.Millisecond
	}
	poll(timeout, func() bool { return sink.stats(&ss) == nil && ss.Count >= int64(n) })
	cpu := procCPU(pid)
	hwm := procKiB(pid, "VmHWM")
	_ = fake.stats(&fs)
	_ = sink.stats(&ss)
	secs := float64(ss.NthNs-fs.StreamStartNs) / 1e9
	rate := float64(n) / secs
	stop()
	switch kind {
	case "instant":
		add(ad.name, "rate_instant", rate)
		add(ad.name, "cpu_per_1k", cpu/float64(n)*1000)
		add(ad.name, "peak_rss", hwm/1024)
		logf("%-7s %-9s %d events in %.2f s: %8.0f events/s, %.3f CPU s per 1000 events, peak RSS %.1f MiB, start %.1f ms",
			ad.name, kind, n, secs, rate, cpu/float64(n)*1000, hwm/1024, startMs)
	case "slow":
		add(ad.name, "rate_slow", rate)
		logf("%-7s %-9s %d events in %.2f s: %8.0f events/s (sink answers after %s), start %.1f ms", ad.name, kind, n, secs, rate, *slowDelay, startMs)
	case "reference":
		add(ad.name, "peak_rss_ref", hwm/1024)
		logf("%-7s %-9s %d events in %.2f s: %8.0f events/s, peak RSS %.1f MiB (--object-state reference), start %.1f ms",
			ad.name, kind, n, secs, rate, hwm/1024, startMs)
	}
	if ss.Count > int64(n) {
		logf("WARNING: %s %s: the sink got %d events, %d expected", ad.name, kind, ss.Count, n)
	}
}

func median(v []float64) float64 {
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func minmax(v []float64) (float64, float64) {
	lo, hi := v[0], v[0]
	for _, x := range v {
		lo, hi = min(lo, x), max(hi, x)
	}
	return lo, hi
}

func loadavg() string {
	b, _ := os.ReadFile("/proc/loadavg")
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

func main() {
	flag.Parse()
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	go func() { die("got %v", <-sigs) }()
	if *oursBin == "" || *knBin == "" || *toolDir == "" || *workDir == "" {
		die("-ours, -knative, -tools and -work are required")
	}
	ours := adapter{"ours", *oursBin, []string{"--probes-addr", "127.0.0.1:0"}}
	kn := adapter{"knative", *knBin, nil}
	loadStart := loadavg()
	started := time.Now()
	logf("%d pair(s); %d events of %d bytes per instant run; adapter on CPU %d, servers on CPU %d; load average %s",
		*pairs, *nEvents, *size, *adapterCPU, *serverCPU, loadStart)
	for p := 0; p < *pairs; p++ {
		order := []adapter{ours, kn}
		if p%2 == 1 {
			order = []adapter{kn, ours}
		}
		for _, kind := range []string{"idle", "instant", "slow"} {
			for _, ad := range order {
				run(ad, kind)
			}
		}
		run(ours, "reference")
	}
	if *latCluster != "" {
		logf("latency: starting the real control plane (%s --real) on CPU %d ...", *latCluster, *serverCPU)
		plane := startRealPlane(*latCluster)
		plane.setup()
		for p := 0; p < *latPairs; p++ {
			order := []adapter{ours, kn}
			if p%2 == 1 {
				order = []adapter{kn, ours}
			}
			for _, ad := range order {
				latencyRun(plane, ad, *latRate, *latDur)
			}
		}
		plane.stop()
	}
	loadEnd := loadavg()

	type row struct {
		name, metric, unit string
		digits             int
		goal               string
		met                func(o, k float64) bool
	}
	nObj := fmt.Sprintf("%dk", *nEvents/1000)
	if *nEvents%1000 != 0 {
		nObj = strconv.Itoa(*nEvents)
	}
	rows := []row{
		{"events/s, instant sink, 1 core", "rate_instant", "", 0, "≥ 45,000 and ≥ 10×",
			func(o, k float64) bool { return o >= 45000 && o/k >= 10 }},
		{"CPU s per 1000 events", "cpu_per_1k", "", 3, "≤ 0.022", func(o, k float64) bool { return o <= 0.022 }},
		{fmt.Sprintf("events/s, %s sink", *slowDelay), "rate_slow", "", 0, "keep ≥ 50×", func(o, k float64) bool { return o/k >= 50 }},
		{"exec → first request", "start", " ms", 1, "≤ 6 ms", func(o, k float64) bool { return o <= 6 }},
		{fmt.Sprintf("RSS after %s idle", *idleWait), "idle_rss", " MiB", 1, "≤ 8 MiB", func(o, k float64) bool { return o <= 8 }},
		{fmt.Sprintf("peak RSS, %s objects watched", nObj), "peak_rss", " MiB", 1, "≤ 0.5× Knative",
			func(o, k float64) bool { return o/k <= 0.5 }},
		{"same, `--object-state reference`", "peak_rss_ref", " MiB", 1, "", nil},
		{fmt.Sprintf("latency p50, %d creates/s asked, real control plane", *latRate), "lat_p50", " ms", 1, "", nil},
		{fmt.Sprintf("latency p99, %d creates/s asked, real control plane", *latRate), "lat_p99", " ms", 1, "", nil},
		{"creates/s achieved in the latency runs", "lat_rate", "", 0, "", nil},
	}
	cell := func(v []float64, unit string, d int) string {
		if len(v) == 0 {
			return ""
		}
		lo, hi := minmax(v)
		f := func(x float64) string {
			if d == 0 {
				return commas(x)
			}
			return strconv.FormatFloat(x, 'f', d, 64)
		}
		if len(v) == 1 {
			return f(v[0]) + unit
		}
		return fmt.Sprintf("%s%s (%s–%s)", f(median(v)), unit, f(lo), f(hi))
	}
	fmt.Printf("\n| metric | ours | Knative v0.49.2 | ratio ours/Knative | goal | met |\n|---|---|---|---|---|---|\n")
	for _, r := range rows {
		o := samples["ours"][r.metric]
		k := samples["knative"][r.metric]
		if len(o) == 0 && len(k) == 0 {
			continue
		}
		if r.metric == "peak_rss_ref" {
			k = nil
		}
		ratio, met := "", ""
		kk := samples["knative"][r.metric]
		if r.metric == "peak_rss_ref" {
			kk = samples["knative"]["peak_rss"]
		}
		if len(o) > 0 && len(kk) > 0 {
			rv := median(o) / median(kk)
			if rv >= 10 {
				ratio = fmt.Sprintf("%.0f×", rv)
			} else {
				ratio = fmt.Sprintf("%.2f×", rv)
			}
			if r.met != nil {
				met = "not met"
				if r.met(median(o), median(kk)) {
					met = "met"
				}
			}
		}
		fmt.Printf("| %s | %s | %s | %s | %s | %s |\n", r.name, cell(o, r.unit, r.digits), cell(k, r.unit, r.digits), ratio, r.goal, met)
	}
	if p, i := samples["ours"]["peak_rss"], samples["ours"]["idle_rss"]; len(p) > 0 && len(i) > 0 && len(samples["ours"]["peak_rss_ref"]) > 0 {
		fmt.Printf("\nOurs per watched object: %.0f bytes by default, %.0f with --object-state reference ((peak − idle RSS) / %d, so the delivery queue at the peak is included; goal ≤ 250).\n",
			(median(p)-median(i))*1048576/float64(*nEvents),
			(median(samples["ours"]["peak_rss_ref"])-median(i))*1048576/float64(*nEvents), *nEvents)
	}
	host, _ := os.Hostname()
	fmt.Println()
	if *pairs > 0 {
		fmt.Printf("Medians (min–max) of %d interleaved pair(s); exec → first request over every run (ours %d, Knative %d). "+
			"Instant runs: %d ADDED watch events of %d bytes after an empty initial state; %s sink runs: %d events (ours), %d (Knative). "+
			"Rates from the start of the watch stream to the last event at the sink; CPU is the adapter's whole user+system time "+
			"(start-up included) over the instant run. Adapter pinned to CPU %d, fake API server, sink and runner to CPU %d.\n",
			*pairs, len(samples["ours"]["start"]), len(samples["knative"]["start"]), *nEvents, *size, *slowDelay, *nSlowOurs, *nSlowKn, *adapterCPU, *serverCPU)
	}
	if *latCluster != "" {
		fmt.Printf("Latency: %d interleaved pair(s) of %s runs against kube-apiserver + etcd (scripts/local-cluster --real, on CPU %d): "+
			"objects of ~1.5 KB created by 32 client goroutines paced to %d/s, each timed from just before its create request to its event at the sink.\n",
			*latPairs, *latDur, *serverCPU, *latRate)
	}
	fmt.Printf("Machine: %s, %d CPUs (%s), load average %s at start, %s at end; %s; %s.\n",
		host, onlineCPUs(), cpuModel(), loadStart, loadEnd, time.Since(started).Round(time.Second), started.UTC().Format("2006-01-02 15:04 UTC"))
	if *label != "" {
		fmt.Println(*label)
	}
}

// onlineCPUs: the machine's CPUs (runtime.NumCPU counts only those this
// process may use, and the runner runs pinned).
func onlineCPUs() int {
	b, _ := os.ReadFile("/proc/cpuinfo")
	n := 0
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "processor") {
			n++
		}
	}
	return n
}

func cpuModel() string {
	b, _ := os.ReadFile("/proc/cpuinfo")
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "model name") {
			return strings.TrimSpace(l[strings.IndexByte(l, ':')+1:])
		}
	}
	return "unknown CPU"
}

func commas(x float64) string {
	s := strconv.FormatInt(int64(x+0.5), 10)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}
