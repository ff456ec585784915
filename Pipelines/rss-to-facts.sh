#!/usr/bin/env bash
# Turns an RSS 2.0 or Atom feed into fact lines for the worker: one JSON object per item,
#   {"statement": "<item title>", "id": "<guid, Atom id or link>", "source": "<feed title>"}
# ready for an inbox (*.jsonl) or the worker's named pipe. Items without a title are
# skipped; CDATA and the XML entities are decoded; control characters are dropped.
#
#   Pipelines/rss-to-facts.sh feed.xml                      # file -> stdout
#   curl -s https://example.org/feed.xml | Pipelines/rss-to-facts.sh > /var/lib/recipe/feed.pipe
#   Pipelines/rss-to-facts.sh Pipelines/rss-to-facts.example.xml > inbox/news.jsonl
#
# A deliberately small converter (POSIX awk, no XML library): it reads the elements the
# two formats define for items and ignores everything else.
set -euo pipefail
exec awk '
function decode(s) {
    if (match(s, /<!\[CDATA\[/)) {
        sub(/^[ \t\r\n]*<!\[CDATA\[/, "", s); sub(/\]\]>[ \t\r\n]*$/, "", s)
    } else {
        gsub(/<[^>]*>/, "", s)                      # markup inside a title
        gsub(/&lt;/, "<", s); gsub(/&gt;/, ">", s); gsub(/&quot;/, "\"", s)
        gsub(/&apos;/, "\047", s); gsub(/&#39;/, "\047", s); gsub(/&amp;/, "\\&", s)
    }
    gsub(/[\001-\037]/, " ", s)                    # newlines, tabs, control characters
    gsub(/  +/, " ", s); sub(/^ /, "", s); sub(/ $/, "", s)
    return s
}
function json(s) { gsub(/\\/, "\\\\", s); gsub(/"/, "\\\"", s); return "\"" s "\"" }
# The text of the first <name ...>...</name> in s ("" when absent).
function element(s, name,    start, rest, end) {
    if (!match(s, "<" name "([ \t\r\n][^>]*)?>")) return ""
    rest = substr(s, RSTART + RLENGTH)
    end = index(rest, "</" name ">")
    return end ? substr(rest, 1, end - 1) : ""
}
# Atom: <link href="..."/>
function atomLink(s) {
    if (!match(s, /<link[^>]*href="[^"]*"/)) return ""
    s = substr(s, RSTART, RLENGTH); sub(/.*href="/, "", s); sub(/"$/, "", s)
    return s
}
{ doc = doc $0 "\n" }
END {
    atom = (index(doc, "<entry") > 0)
    tag = atom ? "entry" : "item"
    head = doc; cut = index(head, "<" tag); if (cut) head = substr(head, 1, cut - 1)
    feed = decode(element(head, "title"))
    rest = doc
    n = 0
    while (match(rest, "<" tag "([ \t\r\n][^>]*)?>")) {
        rest = substr(rest, RSTART + RLENGTH)
        end = index(rest, "</" tag ">")
        if (!end) break
        body = substr(rest, 1, end - 1)
        rest = substr(rest, end)
        title = decode(element(body, "title"))
        if (title == "") continue
        id = decode(element(body, atom ? "id" : "guid"))
        if (id == "") id = atom ? atomLink(body) : decode(element(body, "link"))
        line = "{\"statement\": " json(title)
        if (id != "") line = line ", \"id\": " json(id)
        if (feed != "") line = line ", \"source\": " json(feed)
        print line "}"
        n++
    }
    if (n == 0) print "rss-to-facts: no items with a title found" > "/dev/stderr"
}' "$@"
