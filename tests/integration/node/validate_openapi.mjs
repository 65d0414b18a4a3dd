// Validates an OpenAPI document with @apidevtools/swagger-parser; prints the path list.
import SwaggerParser from '@apidevtools/swagger-parser';

const [file] = process.argv.slice(2);
const api = await SwaggerParser.validate(file);
console.log(JSON.stringify({ openapi: api.openapi, paths: Object.keys(api.paths).sort() }));
