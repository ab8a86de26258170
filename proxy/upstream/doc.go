// Package upstream opens every outbound connection of the gateway: forward
// requests, CONNECT tunnels, reverse-proxy backends, health checks and list
// downloads. It resolves names with its own caching resolver, checks each
// resolved address against the destination guard (the SSRF defence, which
// lets through only allowed networks and a short list of exact ip:port
// exemptions such as the proxy lab's echo origin, never the gateway's own
// listeners), and dials exactly the addresses it checked.
package upstream
