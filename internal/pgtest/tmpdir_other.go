//go:build !linux

package pgtest

// clusterParent is the usual temporary directory outside Linux.
func clusterParent() string { return "" }
