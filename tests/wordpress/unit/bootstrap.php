<?php
/**
 * Loads the mu-plugin's classes without WordPress, and the fakes the tests
 * swap in for its edges (HTTP transport, option store, clock).
 *
 * @package Closte_Operator
 */

error_reporting( E_ALL );
define( 'ABSPATH', __DIR__ . '/' );

// The loader's own list, in its order (interfaces before their implementations).
$closte_operator_loader = dirname( __DIR__, 3 ) . '/wordpress/closte-operator.php';
preg_match_all( "/^require_once __DIR__ \\. '([^']+)';/m", (string) file_get_contents( $closte_operator_loader ), $closte_operator_files );
if ( count( $closte_operator_files[1] ) < 5 ) {
	throw new RuntimeException( 'cannot read the include list of ' . $closte_operator_loader );
}
foreach ( $closte_operator_files[1] as $closte_operator_file ) {
	require_once dirname( $closte_operator_loader ) . $closte_operator_file;
}
require_once __DIR__ . '/wp-functions.php';
require_once __DIR__ . '/fakes.php';
