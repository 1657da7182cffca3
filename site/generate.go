package site

//go:generate go tool templ generate
