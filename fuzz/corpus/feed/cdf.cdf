<?xml version="1.0"?>
<CHANNEL HREF="https://example.org/cdf/" BASE="https://example.org/" LASTMOD="2025-03-14T10:00">
  <TITLE>Example CDF channel</TITLE>
  <ABSTRACT>A Channel Definition Format channel.</ABSTRACT>
  <ITEM HREF="https://example.org/cdf/1" LASTMOD="2025-03-14T09:00">
    <TITLE>Ferry service resumes</TITLE>
    <ABSTRACT>The ferry runs again after the strike.</ABSTRACT>
  </ITEM>
  <ITEM HREF="/cdf/2">
    <TITLE>Library extends hours</TITLE>
    <ABSTRACT>Open until ten on weekdays.</ABSTRACT>
  </ITEM>
</CHANNEL>
