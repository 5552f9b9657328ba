<?php
/**
 * WordPress's translation functions as they behave without a translation
 * loaded: the text as written. Only what the pure classes call.
 *
 * @package Closte_Operator
 */

if ( ! function_exists( '__' ) ) {
	function __( $text, $domain = 'default' ) {
		return $text;
	}
}
if ( ! function_exists( '_n' ) ) {
	function _n( $single, $plural, $number, $domain = 'default' ) {
		return 1 === (int) $number ? $single : $plural;
	}
}
