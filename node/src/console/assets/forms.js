"use strict";
// Forms generated from a command's JSON Schema (the schema the node reflects from its WIT
// types; docs/reflection.md has the mapping). Every WIT shape has a widget: records as field
// groups, options as a "set" switch, enums as selects, flags as checkboxes, variants as a case
// picker with its payload, lists with add/remove, tuples, maps, list<u8> as a file, integers
// range-checked before sending (64-bit ones exactly, as BigInt). Each widget can read its value
// (marking its own field when the value is not allowed) and be set from a value, so the form
// and its JSON stay one. Field paths are the ones the node names in its errors
// (`params.origin.x`, `params.tags[2]`), so a server-side error lands at its field.

const Forms = (() => {
  let counter = 0;
  const uid = (hint) => `f${++counter}-${String(hint).replace(/[^A-Za-z0-9_-]/g, "_")}`;

  /** Makes an element: `el("p", {class: "x"}, "text", child)`; attributes set as such, `on*` as listeners. */
  function el(tag, attrs = {}, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs)) {
      if (v === undefined || v === null || v === false) continue;
      if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
      else if (k === "text") node.textContent = v;
      else node.setAttribute(k, v === true ? "" : v);
    }
    for (const c of children.flat()) {
      if (c === undefined || c === null || c === false) continue;
      node.append(c instanceof Node ? c : document.createTextNode(String(c)));
    }
    return node;
  }

  /** JSON text of a value whose integers may be BigInt (written exactly); `undefined` fields omitted. */
  function toJson(v, indent) {
    const exact = (k, x) => (typeof x === "bigint" ? (JSON.rawJSON ? JSON.rawJSON(x.toString()) : x.toString()) : x);
    return JSON.stringify(v, exact, indent);
  }

  /** Parses JSON keeping integers past 2^53 exact (as BigInt), as the node sends 64-bit values. */
  function parseJson(text) {
    return JSON.parse(text, (k, v, context) =>
      (typeof v === "number" && !Number.isSafeInteger(v) && context && /^-?\d+$/.test(context.source) ? BigInt(context.source) : v));
  }

  // Exact integer ranges by WIT type (the schema's numbers lose precision past 2^53).
  const RANGES = {
    s8: [-128n, 127n], u8: [0n, 255n], s16: [-32768n, 32767n], u16: [0n, 65535n],
    s32: [-2147483648n, 2147483647n], u32: [0n, 4294967295n],
    s64: [-9223372036854775808n, 9223372036854775807n], u64: [0n, 18446744073709551615n],
  };

  /** Which widget draws schema `s`. */
  function kindOf(s) {
    if (!s || typeof s !== "object") return "json";
    if (s.oneOf) return "variant";
    if (s.anyOf) {
      if (s.anyOf.some((b) => b.type === "null")) return "option";
      if (s.format === "f32" || s.format === "f64") return "float";
      return "json";
    }
    switch (s.type) {
      case "boolean": return "bool";
      case "integer": return "int";
      case "number": return "float";
      case "string":
        if (s.enum) return "enum";
        if (s.contentEncoding === "base64") return "bytes";
        if (s.format === "char") return "char";
        return "string";
      case "array":
        if (s.prefixItems) return "tuple";
        if (s.uniqueItems && s.items && s.items.enum) return "flags";
        if (s.minItems !== undefined && s.minItems === s.maxItems) return "fixed";
        return "list";
      case "object":
        if (!s.properties && s.additionalProperties && typeof s.additionalProperties === "object") return "map";
        return "record";
      default:
        return "json";
    }
  }

  /** The option's inner schema (the branch that is not null), with the option's description. */
  function optionInner(s) {
    const inner = s.anyOf.filter((b) => b.type !== "null");
    const one = inner.length === 1 ? inner[0] : { anyOf: inner };
    return { ...one, description: one.description || s.description };
  }

  /**
   * One labelled field around `control`: its label, its description (aria-describedby) and an
   * error slot. `group` draws a fieldset with a legend instead (records, lists, variants…).
   */
  function frame(ctx, control, { group = false } = {}) {
    const descId = ctx.description ? `${control.id || uid("d")}-desc` : undefined;
    const errId = uid("err");
    const error = el("p", { class: "field-error", id: errId, "aria-live": "polite" });
    const desc = ctx.description ? el("p", { class: "field-desc", id: descId, text: ctx.description }) : null;
    let node;
    if (group) {
      node = el("fieldset", { class: "field group", "data-path": ctx.path },
        el("legend", {}, ctx.label, ctx.required ? "" : el("span", { class: "muted", text: " (optional)" })), desc, control, error);
    } else {
      control.setAttribute("aria-describedby", [descId, errId].filter(Boolean).join(" "));
      node = el("div", { class: "field", "data-path": ctx.path },
        el("label", { for: control.id }, ctx.label), control, desc, error);
    }
    // A field's complaint goes as soon as the value is edited again.
    for (const kind of ["input", "change"]) node.addEventListener(kind, () => { if (node.classList.contains("invalid")) mark(""); });
    const mark = (message) => {
      error.textContent = message || "";
      node.classList.toggle("invalid", !!message);
      const target = group ? node.querySelector("input,select,textarea,button") : control;
      if (target && !group) target.setAttribute("aria-invalid", message ? "true" : "false");
    };
    return { node, mark };
  }

  /** A widget for schema `s` at `ctx` ({label, path, description, required}). */
  function widget(s, ctx) {
    ctx = { ...ctx, description: ctx.description ?? s?.description };
    const make = {
      bool: boolWidget, int: intWidget, float: floatWidget, string: stringWidget, char: charWidget,
      enum: enumWidget, bytes: bytesWidget, flags: flagsWidget, option: optionWidget, record: recordWidget,
      list: listWidget, fixed: listWidget, tuple: tupleWidget, map: mapWidget, variant: variantWidget, json: jsonWidget,
    }[kindOf(s)];
    return make(s, ctx);
  }

  function boolWidget(s, ctx) {
    const input = el("input", { type: "checkbox", id: uid(ctx.path) });
    const f = frame(ctx, input);
    f.node.classList.add("check");
    return { node: f.node, read: () => { f.mark(""); return input.checked; }, set: (v) => { input.checked = !!v; }, mark: f.mark, path: ctx.path };
  }

  function intWidget(s, ctx) {
    const [min, max] = RANGES[s.format] || [s.minimum !== undefined ? BigInt(Math.ceil(s.minimum)) : null, s.maximum !== undefined ? BigInt(Math.floor(s.maximum)) : null];
    const input = el("input", { type: "text", inputmode: "numeric", id: uid(ctx.path), autocomplete: "off",
      placeholder: min !== null && max !== null ? `${min} … ${max}` : "integer" });
    const f = frame(ctx, input);
    const read = (errors) => {
      const text = input.value.trim();
      if (!/^-?\d+$/.test(text)) return fail(errors, f, ctx, `enter a whole number${min !== null ? ` from ${min} to ${max}` : ""}`);
      const n = BigInt(text);
      if ((min !== null && n < min) || (max !== null && n > max)) return fail(errors, f, ctx, `must be from ${min} to ${max} (${s.format || "integer"})`);
      f.mark("");
      return n >= BigInt(Number.MIN_SAFE_INTEGER) && n <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(n) : n;
    };
    return { node: f.node, read, set: (v) => { input.value = v === undefined || v === null ? "" : String(v); }, mark: f.mark, path: ctx.path };
  }

  function floatWidget(s, ctx) {
    const input = el("input", { type: "text", inputmode: "decimal", id: uid(ctx.path), autocomplete: "off", placeholder: "number, NaN, Infinity" });
    const f = frame(ctx, input);
    const read = (errors) => {
      const text = input.value.trim();
      if (["NaN", "Infinity", "-Infinity"].includes(text)) { f.mark(""); return text; }
      if (text === "" || !Number.isFinite(Number(text))) return fail(errors, f, ctx, "enter a number (or NaN, Infinity, -Infinity)");
      f.mark("");
      return Number(text);
    };
    return { node: f.node, read, set: (v) => { input.value = v === undefined || v === null ? "" : String(v); }, mark: f.mark, path: ctx.path };
  }

  function stringWidget(s, ctx) {
    const long = /(^|[-_])(text|prompt|document|content|body|question|query|input)$/.test(ctx.label);
    const input = long ? el("textarea", { id: uid(ctx.path), rows: 4 }) : el("input", { type: "text", id: uid(ctx.path), autocomplete: "off" });
    const f = frame(ctx, input);
    return { node: f.node, read: () => { f.mark(""); return input.value; }, set: (v) => { input.value = v ?? ""; }, mark: f.mark, path: ctx.path };
  }

  function charWidget(s, ctx) {
    const input = el("input", { type: "text", id: uid(ctx.path), maxlength: 2, size: 3, autocomplete: "off" });
    const f = frame(ctx, input);
    const read = (errors) => {
      if ([...input.value].length !== 1) return fail(errors, f, ctx, "enter exactly one character");
      f.mark("");
      return input.value;
    };
    return { node: f.node, read, set: (v) => { input.value = v ?? ""; }, mark: f.mark, path: ctx.path };
  }

  function enumWidget(s, ctx) {
    const names = s["x-enum-descriptions"] || {};
    const select = el("select", { id: uid(ctx.path) },
      s.enum.map((v) => el("option", { value: v, title: names[v] }, names[v] ? `${v} — ${names[v]}` : v)));
    const f = frame(ctx, select);
    return { node: f.node, read: () => { f.mark(""); return select.value; }, set: (v) => { select.value = v; }, mark: f.mark, path: ctx.path };
  }

  function bytesWidget(s, ctx) {
    let data = "";
    const status = el("span", { class: "muted", text: "no file: 0 bytes" });
    const input = el("input", { type: "file", id: uid(ctx.path) });
    input.addEventListener("change", async () => {
      const file = input.files[0];
      if (!file) { data = ""; status.textContent = "no file: 0 bytes"; return; }
      const bytes = new Uint8Array(await file.arrayBuffer());
      let binary = "";
      for (let i = 0; i < bytes.length; i += 0x8000) binary += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
      data = btoa(binary);
      status.textContent = `${file.name}: ${bytes.length} bytes`;
    });
    const f = frame(ctx, input);
    f.node.append(status);
    const set = (v) => { data = v || ""; status.textContent = `${atob(data).length} bytes (from JSON)`; };
    return { node: f.node, read: () => { f.mark(""); return data; }, set, mark: f.mark, path: ctx.path };
  }

  function flagsWidget(s, ctx) {
    const names = s.items["x-enum-descriptions"] || {};
    const boxes = s.items.enum.map((flag) => {
      const id = uid(`${ctx.path}-${flag}`);
      const input = el("input", { type: "checkbox", id, value: flag });
      return { flag, input, node: el("div", { class: "check" }, input, el("label", { for: id }, flag, names[flag] ? el("span", { class: "muted", text: ` — ${names[flag]}` }) : "")) };
    });
    const f = frame(ctx, el("div", { class: "flags" }, boxes.map((b) => b.node)), { group: true });
    return {
      node: f.node,
      read: () => { f.mark(""); return boxes.filter((b) => b.input.checked).map((b) => b.flag); },
      set: (v) => { for (const b of boxes) b.input.checked = (v || []).includes(b.flag); },
      mark: f.mark, path: ctx.path,
    };
  }

  function optionWidget(s, ctx) {
    const inner = widget(optionInner(s), { ...ctx, label: ctx.label, required: true });
    const id = uid(`${ctx.path}-set`);
    const toggle = el("input", { type: "checkbox", id, "aria-controls": `${id}-value` });
    const holder = el("div", { id: `${id}-value`, class: "option-value", hidden: true }, inner.node);
    toggle.addEventListener("change", () => { holder.hidden = !toggle.checked; });
    const node = el("div", { class: "field option", "data-path": ctx.path },
      el("div", { class: "check" }, toggle, el("label", { for: id }, `Set ${ctx.label}`, el("span", { class: "muted", text: " (optional)" }))), holder);
    return {
      node,
      read: (errors) => (toggle.checked ? inner.read(errors) : undefined),
      set: (v) => { toggle.checked = v !== undefined && v !== null; holder.hidden = !toggle.checked; if (toggle.checked) inner.set(v); },
      mark: inner.mark, path: ctx.path, children: () => [inner],
    };
  }

  function recordWidget(s, ctx, root = false) {
    const required = new Set(s.required || []);
    const fields = Object.entries(s.properties || {}).map(([name, sub]) =>
      ({ name, w: widget(sub, { label: name, path: `${ctx.path}.${name}`, required: required.has(name) }) }));
    const body = el("div", { class: "record" }, fields.map((x) => x.w.node));
    const f = root ? { node: body, mark: () => {} } : frame({ ...ctx, description: ctx.description }, body, { group: true });
    const read = (errors) => {
      const out = {};
      for (const { name, w } of fields) out[name] = w.read(errors);
      return out;
    };
    const set = (v) => { for (const { name, w } of fields) w.set(v ? v[name] : undefined); };
    return { node: f.node, read, set, mark: f.mark, path: ctx.path, children: () => fields.map((x) => x.w) };
  }

  function listWidget(s, ctx) {
    const fixed = s.minItems !== undefined && s.minItems === s.maxItems;
    const items = [];
    const holder = el("ol", { class: "items" });
    const add = () => {
      const w = widget(s.items || {}, { label: `${ctx.label} item ${items.length + 1}`, path: `${ctx.path}[${items.length}]`, required: true });
      const entry = { w, node: el("li", {}, w.node) };
      if (!fixed) {
        entry.node.append(el("button", { type: "button", class: "small", "aria-label": `Remove ${ctx.label} item ${items.length + 1}`,
          onclick: () => { items.splice(items.indexOf(entry), 1); entry.node.remove(); renumber(); } }, "Remove"));
      }
      items.push(entry);
      holder.append(entry.node);
      return w;
    };
    // Paths follow positions, so an error at `tags[1]` finds the second item after removals.
    const renumber = () => items.forEach((e, i) => { e.w.path = `${ctx.path}[${i}]`; e.w.node.dataset.path = e.w.path; });
    const controls = [holder];
    if (fixed) for (let i = 0; i < s.minItems; i++) add();
    else controls.push(el("button", { type: "button", class: "small", onclick: () => { add(); }, "aria-label": `Add ${ctx.label} item` }, "Add item"));
    const f = frame(ctx, el("div", {}, controls), { group: true });
    const read = (errors) => items.map((e) => e.w.read(errors));
    const set = (v) => {
      if (!fixed) { items.splice(0).forEach((e) => e.node.remove()); (v || []).forEach(() => add()); }
      (v || []).forEach((x, i) => items[i] && items[i].w.set(x));
    };
    return { node: f.node, read, set, mark: f.mark, path: ctx.path, children: () => items.map((e) => e.w) };
  }

  function tupleWidget(s, ctx) {
    const parts = s.prefixItems.map((sub, i) => widget(sub, { label: `${ctx.label} ${i + 1}`, path: `${ctx.path}[${i}]`, required: true }));
    const f = frame(ctx, el("div", { class: "tuple" }, parts.map((p) => p.node)), { group: true });
    return {
      node: f.node, read: (errors) => parts.map((p) => p.read(errors)),
      set: (v) => parts.forEach((p, i) => p.set(v ? v[i] : undefined)), mark: f.mark, path: ctx.path, children: () => parts,
    };
  }

  function mapWidget(s, ctx) {
    const rows = [];
    const holder = el("ul", { class: "items" });
    const add = () => {
      const keyId = uid(`${ctx.path}-key`);
      const key = el("input", { type: "text", id: keyId, autocomplete: "off" });
      const row = { key };
      row.w = widget(s.additionalProperties, { label: "value", path: `${ctx.path}.?`, required: true });
      key.addEventListener("input", () => { row.w.path = `${ctx.path}.${key.value}`; row.w.node.dataset.path = row.w.path; });
      row.node = el("li", { class: "map-row" }, el("div", { class: "field" }, el("label", { for: keyId }, "key"), key), row.w.node,
        el("button", { type: "button", class: "small", "aria-label": `Remove ${ctx.label} entry`, onclick: () => { rows.splice(rows.indexOf(row), 1); row.node.remove(); } }, "Remove"));
      rows.push(row);
      holder.append(row.node);
      return row;
    };
    const f = frame(ctx, el("div", {}, holder, el("button", { type: "button", class: "small", onclick: () => { add(); }, "aria-label": `Add ${ctx.label} entry` }, "Add entry")), { group: true });
    const read = (errors) => {
      const out = Object.create(null);
      for (const r of rows) {
        if (Object.hasOwn(out, r.key.value)) fail(errors, f, ctx, `the key "${r.key.value}" is given twice`);
        out[r.key.value] = r.w.read(errors);
      }
      return out;
    };
    const set = (v) => {
      rows.splice(0).forEach((r) => r.node.remove());
      for (const [k, x] of Object.entries(v || {})) { const r = add(); r.key.value = k; r.key.dispatchEvent(new Event("input")); r.w.set(x); }
    };
    return { node: f.node, read, set, mark: f.mark, path: ctx.path, children: () => rows.map((r) => r.w) };
  }

  function variantWidget(s, ctx) {
    const cases = s.oneOf.map((b) => {
      if (b.const !== undefined) return { name: b.const, schema: null, description: b.description };
      const name = Object.keys(b.properties || {})[0];
      return { name, schema: b.properties[name], description: b.description };
    });
    const select = el("select", { id: uid(`${ctx.path}-case`) },
      cases.map((c) => el("option", { value: c.name }, c.description ? `${c.name} — ${c.description}` : c.name)));
    const payload = el("div", { class: "payload" });
    let current = null;
    const pick = () => {
      const c = cases.find((x) => x.name === select.value);
      payload.replaceChildren();
      current = c.schema ? widget(c.schema, { label: `${c.name} value`, path: `${ctx.path}.${c.name}`, required: true }) : null;
      if (current) payload.append(current.node);
    };
    select.addEventListener("change", pick);
    pick();
    const picker = el("div", { class: "field" }, el("label", { for: select.id }, `${ctx.label}: case`), select);
    const f = frame(ctx, el("div", {}, picker, payload), { group: true });
    const read = (errors) => (current ? { [select.value]: current.read(errors) } : select.value);
    const set = (v) => {
      if (typeof v === "string") { select.value = v; pick(); return; }
      const [name] = Object.keys(v || {});
      if (name === undefined) return;
      select.value = name;
      pick();
      if (current) current.set(v[name]);
    };
    return { node: f.node, read, set, mark: f.mark, path: ctx.path, children: () => (current ? [current] : []) };
  }

  function jsonWidget(s, ctx) {
    const input = el("textarea", { id: uid(ctx.path), rows: 3, class: "mono" });
    const f = frame({ ...ctx, description: `${ctx.description || ""} (JSON)`.trim() }, input);
    const read = (errors) => {
      try { f.mark(""); return JSON.parse(input.value); } catch (e) { return fail(errors, f, ctx, `not JSON: ${e.message}`); }
    };
    return { node: f.node, read, set: (v) => { input.value = v === undefined ? "" : JSON.stringify(v); }, mark: f.mark, path: ctx.path };
  }

  /** Records a problem at a field and returns nothing. */
  function fail(errors, f, ctx, message) {
    f.mark(message);
    errors.push({ path: ctx.path, message });
    return undefined;
  }

  /** Every widget under `w`, itself first. */
  function walk(w) {
    return [w, ...(w.children ? w.children().flatMap(walk) : [])];
  }

  /**
   * The form for a command's params schema: `{node, read() → {value, errors}, set(value),
   * showError(message) → whether a field took it, clear()}`.
   */
  function build(schema) {
    const root = recordWidget(schema.type === "object" ? schema : { properties: {} }, { label: "params", path: "params" }, true);
    const read = () => {
      const errors = [];
      const value = root.read(errors);
      return { value, errors };
    };
    const clear = () => walk(root).forEach((w) => w.mark && w.mark(""));
    // The node names the failing value's path first in its message (`params.tags[1]: …`).
    const showError = (message) => {
      const m = /(params(?:\.[^\s:[\].]+|\[\d+\])*)\s*:/.exec(message || "");
      if (!m) return false;
      const path = m[1];
      const candidates = walk(root).filter((w) => w.path && (path === w.path || path.startsWith(`${w.path}.`) || path.startsWith(`${w.path}[`)));
      const best = candidates.sort((a, b) => b.path.length - a.path.length)[0];
      if (!best || best === root) return false;
      best.mark(message.slice(message.indexOf(path) + path.length).replace(/^\s*:\s*/, ""));
      const focus = best.node.querySelector("input,select,textarea");
      if (focus) focus.focus();
      return true;
    };
    return { node: root.node, read, set: (v) => root.set(v), showError, clear };
  }

  return { build, el, toJson, parseJson, kindOf };
})();
