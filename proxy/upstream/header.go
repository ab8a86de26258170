package upstream

import (
	"net/http"
	"net/textproto"
	"strings"
	"time"
)

// HeaderHasToken reports whether any of h's key fields lists token in its
// comma-separated values (Connection: keep-alive, Upgrade), compared
// without regard to case. key must be in canonical form.
func HeaderHasToken(h http.Header, key, token string) bool {
	for _, v := range h[key] {
		for sf := range strings.SplitSeq(v, ",") {
			if strings.EqualFold(textproto.TrimString(sf), token) {
				return true
			}
		}
	}
	return false
}

func orInt(n, def int) int {
	if n <= 0 {
		return def
	}
	return n
}

func orDuration(d, def time.Duration) time.Duration {
	if d <= 0 {
		return def
	}
	return d
}
