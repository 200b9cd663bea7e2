// {{name}}: a Continuum command plugin in JavaScript (componentize-js).
//
// Build with `continuum plugin build`. Each exported function is a command; imports come from
// the host interfaces your world imports. Enums are strings ('plain', 'loud'); throw a value to
// return the error case of a `result`.

import { write } from 'continuum:host/log@0.1.0';

export function greet(name, style) {
  if (!name.trim()) {
    throw 'name is empty';
  }
  write('info', `greeting ${name}`);
  const text = `Hello, ${name}!`;
  return style === 'loud' ? text.toUpperCase() : text;
}
