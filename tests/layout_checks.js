// Layout checks that tests/test_book.py runs in every page of the built book (page.evaluate).
// Returns {pageOverflow, overflows, clipped, slivers, overlaps, column}: each problem names the element
// ("table.dataframe in div.cell_output", ...) and its measured box, in CSS pixels.
(viewportWidth) => {
  const TOLERANCE = 1;  // px: sub-pixel rounding is not an overflow
  const column = document.querySelector("article.bd-article");
  if (!column) {
    return { error: "no article.bd-article (the page's content column) on this page" };
  }
  const style = (el) => getComputedStyle(el);
  const columnBox = column.getBoundingClientRect();
  const inner = {
    left: columnBox.left + parseFloat(style(column).paddingLeft),
    right: columnBox.right - parseFloat(style(column).paddingRight),
  };
  const fits = (box) => box.left >= inner.left - TOLERANCE && box.right <= inner.right + TOLERANCE;
  const scrollsX = (el) => ["auto", "scroll"].includes(style(el).overflowX);
  const clipsX = (el) => style(el).overflowX !== "visible";
  // rendered: not display:none, not inside a closed <details> (content-visibility), not
  // visibility:hidden or transparent, and with a size
  const shown = (el) => el.checkVisibility({ visibilityProperty: true, opacityProperty: true });
  const visible = (el) => {
    const box = el.getBoundingClientRect();
    return box.width > 0 && box.height > 0 && shown(el);
  };
  const name = (el) => {
    const classes = [...el.classList].filter((c) => !c.startsWith("docutils")).slice(0, 2);
    return el.tagName.toLowerCase() + (classes.length ? "." + classes.join(".") : "");
  };
  const where = (el) => {
    const cell = el.closest("div.cell");
    const heading = (() => {
      // the nearest section heading above the element, to find it on the page
      const section = el.closest("section");
      const h = section && section.querySelector("h1, h2, h3, h4");
      return h ? h.textContent.replace("#", "").trim().slice(0, 60) : "";
    })();
    const parent = el.parentElement ? name(el.parentElement) : "";
    return `${name(el)} in ${parent}${cell ? " (code cell)" : ""}, section "${heading}"`;
  };
  const rect = (box) => ({
    left: Math.round(box.left), right: Math.round(box.right), width: Math.round(box.right - box.left),
  });

  // 1. Wide content: no element of the column (table, code block, cell output, image, formula,
  //    inline code, ...) and no line of text may reach beyond it, unless it sits inside a box
  //    that scrolls (or clips) horizontally and itself fits the column. Only the outermost
  //    offender of a subtree is reported.
  const confined = (start) => {
    for (let a = start; a && a !== column; a = a.parentElement) {
      if (clipsX(a) && fits(a.getBoundingClientRect())) return true;  // hidden overflow: check 2
    }
    return false;
  };
  const overflows = [];
  const reported = [];
  for (const el of column.querySelectorAll("*")) {
    if (reported.some((r) => r.contains(el)) || !visible(el)) continue;
    const box = el.getBoundingClientRect();
    if (fits(box) || confined(el.parentElement)) continue;
    reported.push(el);
    overflows.push({ element: where(el), box: rect(box), column: rect(inner) });
  }
  const textWalker = document.createTreeWalker(column, NodeFilter.SHOW_TEXT);
  for (let node = textWalker.nextNode(); node; node = textWalker.nextNode()) {
    const parent = node.parentElement;
    if (!node.textContent.trim() || reported.some((r) => r.contains(parent)) || !shown(parent)) continue;
    const range = document.createRange();
    range.selectNodeContents(node);
    const wide = [...range.getClientRects()].find((box) => box.width > 0 && !fits(box));
    if (!wide || confined(parent)) continue;
    reported.push(parent);
    overflows.push({ element: `text "${node.textContent.trim().slice(0, 40)}" of ${where(parent)}`,
                     box: rect(wide), column: rect(inner) });
  }

  // 2. Cut-off content: a box that hides horizontal overflow (overflow-x: hidden or clip) while
  //    a visible part of its content lies beyond its edges, so that part can never be seen.
  const clipped = [];
  for (const el of column.querySelectorAll("*")) {
    const s = style(el);
    if (!["hidden", "clip"].includes(s.overflowX) || !visible(el)) continue;
    if (el.scrollWidth <= el.clientWidth + TOLERANCE) continue;
    const own = el.getBoundingClientRect();
    const beyond = (box) => box.right > own.right + TOLERANCE || box.left < own.left - TOLERANCE;
    const ignored = (child) => child.closest("mjx-assistive-mml, .visually-hidden, .sr-only");
    // descendants, and lines of text (a <pre> may fit while its text does not)
    let hidden = [...el.querySelectorAll("*")].find(
      (child) => !ignored(child) && visible(child) && beyond(child.getBoundingClientRect()));
    if (!hidden) {
      const walker = document.createTreeWalker(el, NodeFilter.SHOW_TEXT);
      for (let node = walker.nextNode(); node && !hidden; node = walker.nextNode()) {
        const parent = node.parentElement;
        if (!node.textContent.trim() || ignored(parent) || !shown(parent)) continue;
        const range = document.createRange();
        range.selectNodeContents(node);
        if ([...range.getClientRects()].some(beyond)) hidden = parent;
      }
    }
    if (hidden) {
      clipped.push({ element: where(el), width: Math.round(own.width),
                     hiddenContent: where(hidden), contentWidth: el.scrollWidth });
    }
  }

  // 3. Needless scroll bars: a box that scrolls sideways for a few pixels only (a formula's
  //    invisible copy for screen readers, a rounding error) shows a scroll bar for nothing.
  const slivers = [];
  for (const el of column.querySelectorAll("*")) {
    if (!scrollsX(el) || !visible(el)) continue;
    const extra = el.scrollWidth - el.clientWidth;
    if (extra > 0 && extra <= 3) slivers.push({ element: where(el), extra });
  }

  // 4. Overlapping text: the visible line boxes of different text nodes must not intersect.
  //    A line box is clipped by every ancestor that clips overflow (a scrolled-away part of a
  //    table is not visible, so it cannot overlap anything).
  const scope = document.querySelector("main") || column;
  const clipCache = new Map();
  const clipBox = (el) => {
    if (clipCache.has(el)) return clipCache.get(el);
    let box = { left: -Infinity, top: -Infinity, right: Infinity, bottom: Infinity };
    const parent = el.parentElement;
    if (parent) box = { ...clipBox(parent) };
    if (el !== document.documentElement && (clipsX(el) || style(el).overflowY !== "visible")) {
      const own = el.getBoundingClientRect();
      box = {
        left: Math.max(box.left, own.left), top: Math.max(box.top, own.top),
        right: Math.min(box.right, own.right), bottom: Math.min(box.bottom, own.bottom),
      };
    }
    clipCache.set(el, box);
    return box;
  };
  const lines = [];
  const walker = document.createTreeWalker(scope, NodeFilter.SHOW_TEXT);
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    if (!node.textContent.trim()) continue;
    const el = node.parentElement;
    if (!el || el.closest("mjx-assistive-mml, script, style, .visually-hidden, .sr-only")) continue;
    if (!shown(el)) continue;
    const clip = clipBox(el);
    const range = document.createRange();
    range.selectNodeContents(node);
    for (const r of range.getClientRects()) {
      const box = {
        left: Math.max(r.left, clip.left), top: Math.max(r.top, clip.top),
        right: Math.min(r.right, clip.right), bottom: Math.min(r.bottom, clip.bottom),
      };
      if (box.right - box.left < 1 || box.bottom - box.top < 1) continue;
      lines.push({ box, el, text: node.textContent.trim().slice(0, 40) });
    }
  }
  lines.sort((a, b) => a.box.top - b.box.top);
  const overlaps = [];
  for (let i = 0; i < lines.length && overlaps.length < 20; i++) {
    const a = lines[i];
    for (let j = i + 1; j < lines.length && lines[j].box.top < a.box.bottom; j++) {
      const b = lines[j];
      if (a.el === b.el) continue;  // two lines of one text flow
      const dx = Math.min(a.box.right, b.box.right) - Math.max(a.box.left, b.box.left);
      const dy = Math.min(a.box.bottom, b.box.bottom) - Math.max(a.box.top, b.box.top);
      const height = Math.min(a.box.bottom - a.box.top, b.box.bottom - b.box.top);
      // glyph boxes of neighbouring lines may touch; real overlaps cover much of a line
      if (dx > 2 && dy > 0.4 * height) {
        overlaps.push({ a: `"${a.text}" (${where(a.el)})`, b: `"${b.text}" (${where(b.el)})`,
                        dx: Math.round(dx), dy: Math.round(dy) });
      }
    }
  }

  return {
    // 5. The page itself: no horizontal scrolling of the whole page at this width.
    pageOverflow: document.documentElement.scrollWidth > viewportWidth + TOLERANCE
      ? { scrollWidth: document.documentElement.scrollWidth, viewportWidth } : null,
    overflows, clipped, slivers, overlaps, column: rect(inner),
  };
}
