package engine

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// signatureBodies runs a sync with awkward content (HTML characters, U+2028, emoji, binary,
// chunked, an update, a delete) and a circuit opening, and returns every request received.
func signatureBodies(t *testing.T) (*fixture, []received) {
	f := newFixture(t, smallChunks, circuitOptions)
	bin := make([]byte, 80<<10)
	for i := range bin {
		bin[i] = byte(i * 7)
	}
	f.commit(map[string]string{
		"html.md":         "<script>alert('&')</script>\n",
		"seps.txt":        "line\u2028para\u2029end \"quoted\" \\ tab\t",
		"emoji/ünï 🎉.md":  "🎉 ünïcødé\n",
		"ctrl.txt":        "bell\x07 esc\x1b del\x7f",
		"assets/blob.bin": string(bin),
		"gone.txt":        "bye\n",
	})
	if r := f.sync(); r.Outcome != OutcomeSynced {
		t.Fatalf("sync: %+v", r)
	}
	f.commit(map[string]string{"html.md": "<b>changed</b> & more\n", "gone.txt": ""})
	if r := f.sync(); r.Outcome != OutcomeSynced {
		t.Fatalf("sync: %+v", r)
	}
	f.git.Fail("acme/docs.git", http.StatusInternalServerError)
	for range 3 {
		f.sync()
	}
	reqs := f.rec.requests()
	kinds := map[string]bool{}
	for _, rq := range reqs {
		kinds[rq.Endpoint] = true
	}
	if len(kinds) != 4 {
		t.Fatalf("endpoints seen: %v, want all four", kinds)
	}
	return f, reqs
}

// TestSignaturesVerifyIndependently: every request's X-Docora-Signature is the HMAC-SHA256,
// under the app's key, of timestamp + "." + the raw body (recomputed by the receiver with
// crypto/hmac, not docora's code), the timestamp is current, and the body is compact JSON.
func TestSignaturesVerifyIndependently(t *testing.T) {
	f, reqs := signatureBodies(t)
	for _, rq := range reqs {
		if !rq.SigOK {
			t.Errorf("%s: signature %s does not verify", rq, rq.Signature)
		}
		ts, err := strconv.ParseInt(rq.Timestamp, 10, 64)
		if err != nil || time.Since(time.Unix(ts, 0)).Abs() > time.Minute {
			t.Errorf("%s: timestamp %q", rq, rq.Timestamp)
		}
		if rq.AppID != f.appID || !json.Valid(rq.Body) || strings.ContainsAny(string(rq.Body), "\n") {
			t.Errorf("%s: app %q, body %q", rq, rq.AppID, rq.Body)
		}
	}
}

// TestSignaturesVerifyInNode: a JavaScript receiver that verifies the HMAC over
// JSON.stringify(JSON.parse(body)) — the rule existing receivers use — accepts every request,
// because the body is already in that form.
func TestSignaturesVerifyInNode(t *testing.T) {
	node, err := exec.LookPath("node")
	if err != nil {
		t.Skip("node not on PATH")
	}
	f, reqs := signatureBodies(t)
	dir := t.TempDir()
	for i, rq := range reqs {
		base := filepath.Join(dir, strconv.Itoa(i))
		os.WriteFile(base+".body", rq.Body, 0o600)
		os.WriteFile(base+".meta", []byte(rq.Timestamp+"\n"+rq.Signature), 0o600)
	}
	os.WriteFile(filepath.Join(dir, "key"), f.rec.key, 0o600)
	const script = `const fs = require("fs"), path = require("path"), crypto = require("crypto");
const [dir, n] = [process.argv[1], Number(process.argv[2])];
const key = fs.readFileSync(path.join(dir, "key"));
let bad = 0;
for (let i = 0; i < n; i++) {
  const body = fs.readFileSync(path.join(dir, i + ".body"), "utf8");
  const [ts, sig] = fs.readFileSync(path.join(dir, i + ".meta"), "utf8").split("\n");
  const canonical = JSON.stringify(JSON.parse(body));
  const want = "sha256=" + crypto.createHmac("sha256", key).update(ts + "." + canonical).digest("hex");
  if (canonical !== body) { bad++; console.log(i + ": re-encoded body differs"); }
  if (!crypto.timingSafeEqual(Buffer.from(want), Buffer.from(sig))) { bad++; console.log(i + ": signature differs"); }
}
console.log("verified " + (n - bad) + " of " + n);
process.exit(bad ? 1 : 0);`
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, node, "-e", script, dir, strconv.Itoa(len(reqs))).CombinedOutput()
	if err != nil {
		t.Fatalf("node: %v\n%s", err, out)
	}
	t.Logf("node: %s", strings.TrimSpace(string(out)))
}
