/**
 * Flotilla's release version. Kept as a constant (not read from
 * package.json) so the single-executable bundle needs no file at run time;
 * a unit test keeps it equal to package.json.
 */
export const VERSION = '0.1.0';
