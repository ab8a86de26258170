package upstream

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"syscall"
)

// Cause names why an outbound connection or request failed, in words a user
// can act on. The names returned by String are stable: they are metric label
// values and appear in logs.
type Cause int

// Causes of upstream failures.
const (
	CauseOther       Cause = iota // anything not listed below
	CauseBadAddress               // the host or port cannot be dialed as written
	CauseNotFound                 // the name does not exist (NXDOMAIN, no addresses)
	CauseDNS                      // the resolver failed (SERVFAIL, no answer)
	CauseDenied                   // the destination guard refused the address
	CauseRefused                  // the destination refused the connection
	CauseUnreachable              // no route to the host or network
	CauseTimeout                  // a dial, lookup or response timed out
	CauseTLS                      // TLS handshake or certificate verification failed
	CauseReset                    // the destination reset or closed the connection
	CauseCanceled                 // the client went away
)

var causeNames = [...]string{
	CauseOther:       "other",
	CauseBadAddress:  "bad_address",
	CauseNotFound:    "not_found",
	CauseDNS:         "dns_failure",
	CauseDenied:      "denied",
	CauseRefused:     "refused",
	CauseUnreachable: "unreachable",
	CauseTimeout:     "timeout",
	CauseTLS:         "tls",
	CauseReset:       "reset",
	CauseCanceled:    "canceled",
}

// String returns the stable name of c.
func (c Cause) String() string {
	if c >= 0 && int(c) < len(causeNames) {
		return causeNames[c]
	}
	return "other"
}

// AllCauses lists every Cause, for pre-creating metric series.
func AllCauses() []Cause {
	out := make([]Cause, len(causeNames))
	for i := range out {
		out[i] = Cause(i)
	}
	return out
}

// DialError is returned by Dialer.DialContext and Dialer.Resolve.
type DialError struct {
	// Addr is the host:port that was asked for.
	Addr string
	// Cause classifies Err.
	Cause Cause
	// Err is the underlying error.
	Err error
}

func (e *DialError) Error() string {
	return "dialing " + e.Addr + ": " + e.Err.Error()
}

func (e *DialError) Unwrap() error { return e.Err }

// Timeout reports whether the dial timed out.
func (e *DialError) Timeout() bool { return e.Cause == CauseTimeout }

// CauseOf classifies any error met on the way to an origin: dial errors,
// lookup errors, guard denials, TLS failures, timeouts, resets and client
// cancellation. A nil error is CauseOther.
func CauseOf(err error) Cause {
	if err == nil {
		return CauseOther
	}
	var de *DialError
	if errors.As(err, &de) && de.Cause != CauseOther {
		return de.Cause
	}
	var denied *DeniedError
	if errors.As(err, &denied) {
		return CauseDenied
	}
	var le *LookupError
	if errors.As(err, &le) {
		switch le.Kind {
		case LookupNotFound:
			return CauseNotFound
		case LookupTimeout:
			return CauseTimeout
		default:
			return CauseDNS
		}
	}
	if errors.Is(err, context.Canceled) {
		return CauseCanceled
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return CauseTimeout
	}
	var (
		certInvalid  x509.CertificateInvalidError
		unknownAuth  x509.UnknownAuthorityError
		hostname     x509.HostnameError
		verifyErr    *tls.CertificateVerificationError
		recordHeader tls.RecordHeaderError
		alert        tls.AlertError
	)
	if errors.As(err, &verifyErr) || errors.As(err, &unknownAuth) || errors.As(err, &certInvalid) ||
		errors.As(err, &hostname) || errors.As(err, &recordHeader) || errors.As(err, &alert) {
		return CauseTLS
	}
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return CauseRefused
	case errors.Is(err, syscall.EHOSTUNREACH), errors.Is(err, syscall.ENETUNREACH):
		return CauseUnreachable
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE):
		return CauseReset
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return CauseTimeout
	}
	return CauseOther
}
