package site

//go:generate go tool templ generate -f pages.templ
