// Command waygate runs the Waygate gateway: a forward proxy for a company's
// clients that decides every request with a URL-category policy and records
// it in a tamper-evident audit trail, administered on a loopback admin
// listener. Subcommands serve, check a config file, test the policy on a
// URL, verify and export the audit trail, hash a password and print the
// version.
package main

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"strings"

	"golang.org/x/crypto/bcrypt"

	"waygate/cmd/waygate/internal/config"
	"waygate/proxy"
	"waygate/reverse"
)

const usage = `usage: waygate [command] [flags]

commands:
  serve [-config FILE]   run the gateway (the default; embedded defaults without -config)
  check -config FILE     validate a config file and exit
  passwd                 read a password on stdin, print its bcrypt hash for the config
  filter test -config FILE URL [-client IP] [-user NAME] [-method M] [-at TIME]
                         print the policy decision for URL and why
  audit verify [-config FILE]   check the audit trail's hash chain
  audit export [-config FILE] -format csv|jsonl|squid [-since T] [-until T] [-o FILE]
                         stream audit events
  defaults               print the embedded default config, with comments
  version                print the version
`

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

// run executes one command line and returns the process exit code.
func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	cmd := "serve"
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		cmd, args = args[0], args[1:]
	}
	switch cmd {
	case "serve":
		return cmdServe(args, stderr)
	case "check":
		return cmdCheck(args, stdout, stderr)
	case "passwd":
		return cmdPasswd(stdin, stdout, stderr)
	case "filter":
		return cmdFilter(args, stdout, stderr)
	case "audit":
		return cmdAudit(args, stdout, stderr)
	case "defaults":
		stdout.Write(config.DefaultYAML)
		return 0
	case "version", "-version", "--version":
		fmt.Fprintln(stdout, "waygate", version())
		return 0
	case "help", "-h", "-help", "--help":
		fmt.Fprint(stdout, usage)
		return 0
	}
	fmt.Fprintf(stderr, "waygate: unknown command %q\n\n%s", cmd, usage)
	return 2
}

// version returns the module version, or the VCS revision of a local build.
func version() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "unknown"
	}
	v := bi.Main.Version
	var rev, dirty string
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			if s.Value == "true" {
				dirty = "+dirty"
			}
		}
	}
	if (v == "" || v == "(devel)") && rev != "" {
		if len(rev) > 12 {
			rev = rev[:12]
		}
		return "devel-" + rev + dirty
	}
	if v == "" {
		return "devel"
	}
	return v
}

func configFlag(name string, args []string, stderr io.Writer) (string, error) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", "", "config file (YAML)")
	if err := fs.Parse(args); err != nil {
		return "", err
	}
	if fs.NArg() > 0 {
		return "", fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	return *path, nil
}

// loadConfig reads path, or returns the embedded defaults when path is "".
func loadConfig(path string) (*config.Config, error) {
	if path == "" {
		return config.Default(), nil
	}
	return config.Load(path)
}

func cmdCheck(args []string, stdout, stderr io.Writer) int {
	path, err := configFlag("check", args, stderr)
	if err != nil {
		return 2
	}
	if path == "" {
		fmt.Fprintln(stderr, "waygate check: -config FILE is required")
		return 2
	}
	cfg, err := config.Load(path)
	if err == nil {
		// Build the runtime parts too: CA files and hashes are checked there.
		var opts proxy.Options
		if opts, err = buildProxyOptions(cfg, path, newDialer(cfg, nil, nil), cachedCopies(cfg), true); err == nil && opts.Filter != nil {
			st := opts.Filter.Stats()
			fmt.Fprintf(stdout, "policy %s: %d categories, %d domains, %d entries, %d malformed lines\n",
				opts.Filter.Version(), len(opts.Filter.Categories()), st.Domains, st.Entries, st.Malformed)
			for _, p := range st.Problems {
				fmt.Fprintln(stdout, "  "+p.String())
			}
		}
	}
	if err == nil && cfg.Admin.TLS.Enabled && len(cfg.Admin.TLS.Certificates) > 0 {
		// The admin certificates are read as serve reads them (never the
		// self-signed one, which check would have to write).
		pairs := adminCertPairs(cfg, path)
		if _, cerr := reverse.NewCertStoreNamed(pairs, cfg.DataDir, adminSelfSignedName, nil); cerr != nil {
			err = adminCertError(cerr, pairs, path)
		}
	}
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	fmt.Fprintf(stdout, "%s: ok\n", path)
	return 0
}

func cmdPasswd(stdin io.Reader, stdout, stderr io.Writer) int {
	line, err := bufio.NewReader(stdin).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		fmt.Fprintln(stderr, "waygate passwd: reading password:", err)
		return 1
	}
	pw := strings.TrimRight(line, "\r\n")
	if pw == "" {
		fmt.Fprintln(stderr, "waygate passwd: empty password")
		return 1
	}
	if len(pw) > 72 {
		fmt.Fprintln(stderr, "waygate passwd: password longer than 72 bytes (bcrypt's limit)")
		return 1
	}
	hash, err := bcrypt.GenerateFromPassword([]byte(pw), bcrypt.DefaultCost)
	if err != nil {
		fmt.Fprintln(stderr, "waygate passwd:", err)
		return 1
	}
	fmt.Fprintln(stdout, string(hash))
	return 0
}
